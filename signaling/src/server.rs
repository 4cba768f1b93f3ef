//! The HTTP surface: routes, and the HTTP and HTTPS listeners that serve them.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use roomcast_sfu::Sfu;
use tokio::net::TcpListener;

use crate::protocol::MAX_MESSAGE_BYTES;
use crate::tls::{rustls_config, TlsFiles};
use crate::{client_files, session, SignalingError};

/// Frames beyond this size close the connection outright; up to it, oversized protocol messages
/// get a `too_large` error and the connection lives on.
const MAX_FRAME_BYTES: usize = 4 * MAX_MESSAGE_BYTES;

/// All routes: the client app, and the signaling WebSocket at `/ws`.
pub fn router(sfu: Sfu) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .merge(client_files::routes())
        .with_state(sfu)
}

async fn websocket(State(sfu): State<Sfu>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session::run(socket, sfu))
}

/// Serves plain HTTP on an already bound listener until `shutdown` completes.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SignalingError> {
    axum::serve(listener, app)
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
