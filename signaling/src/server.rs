//! The HTTP surface: routes, and the HTTP and HTTPS listeners that serve them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use roomcast_sfu::Sfu;
use tokio::net::TcpListener;

use crate::admin::{self, AdminAccess};
use crate::edge_metrics::EdgeMetrics;
use crate::protocol::MAX_MESSAGE_BYTES;
use crate::tls::{rustls_config, TlsFiles};
use crate::{client_files, session, SignalingError};

/// Frames beyond this size close the connection outright; up to it, oversized protocol messages
/// get a `too_large` error and the connection lives on.
const MAX_FRAME_BYTES: usize = 4 * MAX_MESSAGE_BYTES;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sfu: Sfu,
    pub(crate) edge: Arc<EdgeMetrics>,
    pub(crate) admin: Arc<AdminAccess>,
    pub(crate) openapi: Arc<OnceLock<String>>,
}

/// Options of the edge.
#[derive(Clone, Debug)]
pub struct EdgeOptions {
    pub admin: AdminAccess,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            admin: AdminAccess::LoopbackOnly,
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
        admin: Arc::new(options.admin),
        openapi: Arc::default(),
    };
    let (admin_routes, openapi) = admin::routes(state.clone());
    let document = openapi.to_pretty_json().unwrap_or_default();
    let _ = state.openapi.set(document);
    Router::new()
        .route("/ws", get(websocket))
        .merge(admin_routes)
        .merge(client_files::routes())
        .with_state(state)
}

async fn websocket(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session::run(socket, state.sfu, state.edge))
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
