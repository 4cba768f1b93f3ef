//! The browser client, compiled into the binary so it runs from anywhere, offline, with no
//! separate asset directory to deploy.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use roomcast_sfu::Sfu;

const FILES: [(&str, &str, &str); 3] = [
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../client/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../client/style.css"),
    ),
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../client/index.html"),
    ),
];

pub(crate) fn routes() -> Router<Sfu> {
    let mut router = Router::new();
    for (path, content_type, body) in FILES {
        router = router.route(path, get(move || serve(content_type, body)));
    }
    router.route("/index.html", get(|| serve(FILES[2].1, FILES[2].2)))
}

async fn serve(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
