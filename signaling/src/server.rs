//! The HTTP surface: routes, and the HTTP and HTTPS listeners that serve them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::header::{ORIGIN, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use roomcast_sfu::Sfu;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::admin::{self, AdminAccess};
use crate::edge_metrics::EdgeMetrics;
use crate::limits::EdgeLimits;
use crate::listener::{self, Accepted};
use crate::log_limit::{clip_bytes, LogGate};
use crate::origin::origin_allowed;
use crate::penalties::Penalties;
use crate::room_tokens::RoomTokens;
use crate::session::Connection;
use crate::slots::{ConnectionSlots, NoSlot};
use crate::tls::{rustls_config, TlsFiles};
use crate::{client_files, security_headers, session, SignalingError};

/// Bytes the signaling WebSocket reads at a time (tungstenite's own advice for many connections).
const WS_READ_BUFFER: usize = 4 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sfu: Sfu,
    pub(crate) edge: Arc<EdgeMetrics>,
    pub(crate) openapi: Arc<OnceLock<String>>,
    pub(crate) options: Arc<EdgeOptions>,
    pub(crate) guard: Arc<Guard>,
}

/// What the edge keeps across connections to hold off a client that opens many.
pub(crate) struct Guard {
    pub(crate) slots: ConnectionSlots,
    pub(crate) penalties: Penalties,
    /// Refusals of whole connections are logged at most once a second, however many there are.
    refusals: LogGate,
    /// And so are refused admin requests.
    pub(crate) admin_refusals: LogGate,
}

impl Guard {
    fn new(limits: &EdgeLimits) -> Self {
        Self {
            slots: ConnectionSlots::new(limits.max_connections, limits.max_connections_per_address),
            penalties: Penalties::new(limits.abuse_backoff, limits.abuse_backoff_max),
            refusals: LogGate::new(std::time::Duration::from_secs(1)),
            admin_refusals: LogGate::new(std::time::Duration::from_secs(1)),
        }
    }

    /// Logs a refused connection, unless one was logged less than a second ago.
    fn log_refusal(&self, why: &str, origin: Option<&axum::http::HeaderValue>) {
        if let Some(suppressed) = self.refusals.pass(Instant::now()) {
            let origin = origin.map(|o| clip_bytes(o.as_bytes()));
            tracing::warn!(origin = ?origin, suppressed, "websocket refused: {why}");
        }
    }
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
    /// With `--redis`: the cluster this node belongs to.
    pub cluster: Option<ClusterMember>,
}

/// This node's view of the cluster it belongs to.
#[derive(Clone)]
pub struct ClusterMember {
    pub registry: roomcast_cluster::Registry,
    pub claims: roomcast_cluster::RoomClaims,
    /// Signaling for rooms that live on other nodes.
    pub relay: crate::Relay,
}

impl std::fmt::Debug for ClusterMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMember")
            .field("node", self.claims.node())
            .finish()
    }
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            admin: AdminAccess::LoopbackOnly,
            limits: EdgeLimits::default(),
            room_tokens: None,
            allowed_origins: Vec::new(),
            cluster: None,
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
        guard: Arc::new(Guard::new(&options.limits)),
        options: Arc::new(options),
    };
    let (admin_routes, openapi) = admin::routes(state.clone());
    let document = openapi.to_pretty_json().unwrap_or_default();
    let _ = state.openapi.set(document);
    Router::new()
        .route("/ws", get(websocket))
        .merge(admin_routes)
        .merge(client_files::routes())
        .layer(axum::middleware::from_fn(security_headers::add))
        .with_state(state)
}

async fn websocket(
    State(state): State<AppState>,
    accepted: Option<Extension<Accepted>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let options = &state.options;
    let guard = &state.guard;
    let tls = accepted.as_ref().map(|Extension(a)| a.tls);
    if !origin_allowed(&headers, &options.allowed_origins, tls) {
        guard.log_refusal("foreign origin", headers.get(ORIGIN));
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let address = match (&accepted, &peer) {
        (Some(Extension(a)), _) => a.peer.ip(),
        (None, Some(Extension(ConnectInfo(p)))) => p.ip(),
        (None, None) => std::net::Ipv4Addr::UNSPECIFIED.into(),
    };
    if let Some(wait) = guard.penalties.banned_for(address, Instant::now()) {
        let retry = (wait.as_secs() + 1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, retry)],
            "this address was closed for abuse: retry later",
        )
            .into_response();
    }
    // Taken before anything is done for the connection, and held by its session.
    let slot = match guard.slots.take(address) {
        Ok(slot) => slot,
        Err(NoSlot::ServerFull) => {
            guard.log_refusal("too many connections", None);
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
        }
        Err(NoSlot::AddressFull) => {
            guard.log_refusal("too many connections from one address", None);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            )
                .into_response();
        }
    };
    let meter = accepted.map(|Extension(a)| a.meter);
    if let Some(meter) = &meter {
        meter.allow_only(options.limits.unjoined_bytes as u64);
    }
    // A message (or frame) past the limit closes the connection: it was never parsed, so it
    // never cost more than the limit to buffer.
    let max = options.limits.max_message_bytes;
    let connection = Connection {
        address,
        meter,
        _slot: slot,
        guard: Arc::clone(&state.guard),
    };
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        // tungstenite's default read buffer is 128 KiB per connection, zero-filled (so resident)
        // on the first read: a quarter of a participant's memory. Signaling messages are a few
        // KiB and rare; a larger frame grows the buffer to its size.
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| {
            session::run(socket, connection, state.sfu, state.edge, state.options)
        })
}

/// Serves plain HTTP on an already bound listener until `shutdown` completes, then gives
/// requests in progress [`listener::DRAIN_TIMEOUT`] to finish.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SignalingError> {
    listener::serve(listener, None, app, shutdown).await;
    Ok(())
}

/// Serves HTTPS on an already bound listener until `shutdown` completes (see [`serve_http`]).
pub async fn serve_https(
    listener: std::net::TcpListener,
    tls: &TlsFiles,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SignalingError> {
    let config = rustls_config(tls).await?;
    listener
        .set_nonblocking(true)
        .map_err(SignalingError::Serve)?;
    let listener = TcpListener::from_std(listener).map_err(SignalingError::Serve)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    listener::serve(listener, Some(acceptor), app, shutdown).await;
    Ok(())
}
