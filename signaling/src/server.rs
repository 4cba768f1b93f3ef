//! The HTTP surface: routes, and the HTTP and HTTPS listeners that serve them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{State, WebSocketUpgrade};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use roomcast_sfu::Sfu;
use tokio::net::TcpListener;

use crate::admin::{self, AdminAccess};
use crate::edge_metrics::EdgeMetrics;
use crate::limits::EdgeLimits;
use crate::room_tokens::RoomTokens;
use crate::tls::{rustls_config, TlsFiles};
use crate::{client_files, security_headers, session, SignalingError};

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sfu: Sfu,
    pub(crate) edge: Arc<EdgeMetrics>,
    pub(crate) openapi: Arc<OnceLock<String>>,
    pub(crate) options: Arc<EdgeOptions>,
}

/// Options of the edge.
#[derive(Clone, Debug)]
pub struct EdgeOptions {
    pub admin: AdminAccess,
    pub limits: EdgeLimits,
    /// With tokens, `join` must carry a room token signed with this secret.
    pub room_tokens: Option<RoomTokens>,
    /// Origins (`scheme://host[:port]`) whose pages may open the signaling WebSocket. Empty:
    /// only pages served by this server (the Origin's host matches the request's Host).
    pub allowed_origins: Vec<String>,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            admin: AdminAccess::LoopbackOnly,
            limits: EdgeLimits::default(),
            room_tokens: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// All routes: the client app, the signaling WebSocket at `/ws`, the admin API, metrics and
/// dashboard. Serve it with connect info (as [`serve_http`] and [`serve_https`] do): the admin
/// routes need the peer address.
pub fn router(sfu: Sfu, options: EdgeOptions) -> Router {
    let state = AppState {
        sfu,
        edge: Arc::default(),
        openapi: Arc::default(),
        options: Arc::new(options),
    };
    let (admin_routes, openapi) = admin::routes(state.clone());
    let document = openapi.to_pretty_json().unwrap_or_default();
    let _ = state.openapi.set(document);
    Router::new()
        .route("/ws", get(websocket))
        .merge(admin_routes)
        .merge(client_files::routes())
        .layer(axum::middleware::map_response(security_headers::add))
        .with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let options = &state.options;
    if !origin_allowed(&headers, &options.allowed_origins) {
        tracing::warn!(origin = ?headers.get(ORIGIN), "websocket from a foreign origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let open = state.edge.open_connections();
    if open >= options.limits.max_connections as i64 {
        tracing::warn!(open, "websocket refused: too many connections");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    }
    // Frames beyond this close the connection outright; up to it, oversized protocol messages
    // get a `too_large` error and the connection lives on.
    let max_frame = options.limits.max_message_bytes.saturating_mul(4);
    upgrade
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| session::run(socket, state.sfu, state.edge, state.options))
}

/// Browsers always send `Origin` on a WebSocket handshake; other clients may not, and can forge
/// it anyway, so only a present, foreign Origin is refused. That stops other sites' pages from
/// using a visitor's browser to join rooms.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// Serves plain HTTP on an already bound listener until `shutdown` completes.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SignalingError> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(SignalingError::Serve)
}

/// Serves HTTPS on an already bound listener until `handle` is told to shut down.
pub async fn serve_https(
    listener: std::net::TcpListener,
    tls: &TlsFiles,
    app: Router,
    handle: axum_server::Handle,
) -> Result<(), SignalingError> {
    let config = rustls_config(tls).await?;
    listener
        .set_nonblocking(true)
        .map_err(SignalingError::Serve)?;
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(SignalingError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            h.insert(ORIGIN, origin.parse().unwrap());
        }
        h
    }

    #[test]
    fn by_default_only_pages_of_this_server_may_connect() {
        assert!(origin_allowed(
            &headers(Some("https://meet.example.org"), "meet.example.org"),
            &[]
        ));
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "meet.example.org"),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "meet.example.org"),
            &[]
        ));
    }

    #[test]
    fn a_configured_list_replaces_the_default() {
        let allowed = ["https://app.example.org".to_owned()];
        assert!(origin_allowed(
            &headers(Some("https://app.example.org"), "sfu.example.org"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("https://sfu.example.org"), "sfu.example.org"),
            &allowed
        ));
    }

    #[test]
    fn clients_that_send_no_origin_are_not_browsers_and_pass() {
        assert!(origin_allowed(&headers(None, "meet.example.org"), &[]));
    }
}
