//! Accepting connections on the HTTP and HTTPS listeners. Every connection gets a deadline for
//! its TLS handshake and request headers (a client that trickles them cannot hold a socket), a
//! byte meter the WebSocket session uses to bound what it buffers, and its peer address; shutdown
//! stops accepting, asks open connections to finish and waits for them only briefly.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::log_limit::LogGate;
use crate::metered::{Meter, Metered};

/// Time a client has to finish its TLS handshake, and then each request's headers (also the
/// first one: an idle connection is closed after this too).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for requests in progress before dropping them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What the listener knows about the connection a request came on.
#[derive(Clone, Debug)]
pub(crate) struct Accepted {
    pub(crate) peer: SocketAddr,
    pub(crate) meter: Meter,
    pub(crate) tls: bool,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, alive_rx) = watch::channel(());
    let accept_errors = LogGate::new(Duration::from_secs(1));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually: wait for some to close.
                    if let Some(suppressed) = accept_errors.pass(tokio::time::Instant::now()) {
                        tracing::warn!(%error, suppressed, "could not accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            stop: stop_rx.clone(),
            _alive: alive_rx.clone(),
        };
        tokio::spawn(connection.run(stream, peer, tls.clone()));
    }
    drop(listener);
    drop(alive_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_tx.closed())
        .await
        .is_err()
    {
        tracing::info!(
            open = alive_tx.receiver_count(),
            "shutdown: dropping connections still open"
        );
    }
}

struct Connection {
    app: Router,
    stop: watch::Receiver<bool>,
    /// Held while the connection is served, so shutdown can wait for it.
    _alive: watch::Receiver<()>,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let meter = Meter::default();
        let io = Metered::new(stream, meter.clone());
        let accepted = Accepted {
            peer,
            meter,
            tls: tls.is_some(),
        };
        match tls {
            None => self.http(io, accepted).await,
            Some(tls) => match tokio::time::timeout(HEADER_TIMEOUT, tls.accept(io)).await {
                Ok(Ok(io)) => self.http(io, accepted).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
        }
    }

    async fn http<I>(mut self, io: I, accepted: Accepted)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = accepted.peer;
        let service = self
            .app
            .map_request(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(accepted.clone());
                request
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            }
            _ = async { let _ = self.stop.wait_for(|stop| *stop).await; } => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}
