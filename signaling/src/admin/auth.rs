//! Who may use the admin API, metrics and dashboard: holders of the bearer token when one is
//! configured, otherwise only clients on this machine (loopback) that also name this machine in
//! `Host`: a page on another site whose name was rebound to 127.0.0.1 (DNS rebinding) reaches
//! the server from loopback, but with its own name in `Host`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::views::ApiError;
use crate::server::AppState;

#[derive(Clone, Debug)]
pub enum AdminAccess {
    /// Requests must carry `Authorization: Bearer <token>`.
    Token(String),
    /// No token configured: loopback clients only.
    LoopbackOnly,
}

impl AdminAccess {
    pub fn from_token(token: Option<String>) -> Self {
        match token {
            Some(t) if !t.is_empty() => AdminAccess::Token(t),
            _ => AdminAccess::LoopbackOnly,
        }
    }

    /// Decides one request from its peer address and `Host` and `Authorization` headers.
    pub(crate) fn check(
        &self,
        peer: IpAddr,
        host: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<(), ApiError> {
        match self {
            AdminAccess::LoopbackOnly if is_loopback(peer) && host.is_some_and(names_loopback) => {
                Ok(())
            }
            AdminAccess::LoopbackOnly => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "no admin token is configured, so the admin API answers only to loopback clients \
                 that address it as localhost or a loopback address",
            )),
            AdminAccess::Token(expected) => {
                let given = authorization
                    .and_then(|h| h.trim().split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim())
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "missing bearer token",
                        )
                    })?;
                if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "wrong bearer token",
                    ))
                }
            }
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a `Host` header names this machine: `localhost` or a loopback address, with or
/// without a port.
fn names_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// Middleware guarding the admin routes.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    let checked =
        state
            .options
            .admin
            .check(peer.ip(), text(header::HOST), text(header::AUTHORIZATION));
    match checked {
        Ok(()) => {
            let mut response = next.run(request).await;
            // Room lists and participant names are not for shared caches or the back button.
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => {
            if let Some(suppressed) = state.guard.admin_refusals.pass(tokio::time::Instant::now()) {
                tracing::info!(%peer, status = error.status.as_u16(), suppressed, "admin request refused");
            }
            let mut response = error.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

    fn status(r: Result<(), ApiError>) -> Option<u16> {
        r.err().map(|e| e.status.as_u16())
    }

    /// A request addressed to `localhost`.
    fn check(access: &AdminAccess, peer: IpAddr, authorization: Option<&str>) -> Option<u16> {
        status(access.check(peer, Some("localhost:8080"), authorization))
    }

    #[test]
    fn without_a_token_the_host_must_name_this_machine_too() {
        let access = AdminAccess::from_token(None);
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
            "[::1]",
        ] {
            assert_eq!(
                status(access.check(LOCAL, Some(host), None)),
                None,
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "[::2]:80",
        ] {
            assert_eq!(
                status(access.check(LOCAL, Some(host), None)),
                Some(403),
                "{host}"
            );
        }
        assert_eq!(
            status(access.check(LOCAL, None, None)),
            Some(403),
            "no Host at all"
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let access = AdminAccess::from_token(Some("s3cret".into()));
        assert_eq!(check(&access, REMOTE, Some("bearer s3cret")), None);
        assert_eq!(check(&access, REMOTE, Some("BEARER  s3cret")), None);
        assert_eq!(check(&access, REMOTE, Some("bearers3cret")), Some(401));
    }

    #[test]
    fn without_a_token_only_loopback_clients_get_in() {
        let access = AdminAccess::from_token(None);
        assert_eq!(check(&access, LOCAL, None), None);
        assert_eq!(check(&access, "::1".parse().unwrap(), None), None);
        assert_eq!(
            check(&access, "::ffff:127.0.0.1".parse().unwrap(), None),
            None
        );
        assert_eq!(check(&access, REMOTE, None), Some(403));
        assert_eq!(check(&access, REMOTE, Some("Bearer anything")), Some(403));
    }

    #[test]
    fn with_a_token_everyone_needs_it_even_on_loopback() {
        let access = AdminAccess::from_token(Some("s3cret".into()));
        assert_eq!(check(&access, REMOTE, Some("Bearer s3cret")), None);
        assert_eq!(check(&access, LOCAL, None), Some(401));
        assert_eq!(check(&access, LOCAL, Some("Bearer s3cre")), Some(401));
        assert_eq!(check(&access, LOCAL, Some("Bearer s3cret!")), Some(401));
        assert_eq!(check(&access, LOCAL, Some("Basic s3cret")), Some(401));
    }

    #[test]
    fn an_empty_token_means_no_token() {
        assert!(matches!(
            AdminAccess::from_token(Some(String::new())),
            AdminAccess::LoopbackOnly
        ));
    }
}
