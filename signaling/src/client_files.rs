//! The browser client and the operators' dashboard, compiled into the binary so they run from
//! anywhere, offline, with no separate asset directory to deploy.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::admin::AdminAccess;
use crate::server::AppState;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const PUBLIC: [(&str, &str, &str); 9] = [
    ("/", HTML, include_str!("../../client/index.html")),
    ("/index.html", HTML, include_str!("../../client/index.html")),
    ("/app.js", JS, include_str!("../../client/app.js")),
    ("/roomcast.js", JS, include_str!("../../client/roomcast.js")),
    (
        "/sdk-example.html",
        HTML,
        include_str!("../../client/sdk-example.html"),
    ),
    (
        "/sdk-example.js",
        JS,
        include_str!("../../client/sdk-example.js"),
    ),
    ("/style.css", CSS, include_str!("../../client/style.css")),
    ("/admin.js", JS, include_str!("../../client/admin.js")),
    ("/admin.css", CSS, include_str!("../../client/admin.css")),
];

const DASHBOARD: &str = include_str!("../../client/admin.html");

pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/admin", get(dashboard));
    for (path, content_type, body) in PUBLIC {
        router = router.route(path, get(move || async move { file(content_type, body) }));
    }
    router
}

/// The dashboard holds no data itself (it reads the admin API, which checks the token), but
/// without a token it is shown to loopback clients only, like the API.
async fn dashboard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    if matches!(state.options.admin, AdminAccess::LoopbackOnly) {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if let Err(error) = state.options.admin.check(peer.ip(), host, None) {
            return error.into_response();
        }
    }
    file(HTML, DASHBOARD)
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, content_type),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
