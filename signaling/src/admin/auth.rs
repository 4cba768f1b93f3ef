//! Who may use the admin API, metrics and dashboard: holders of the bearer token when one is
//! configured, otherwise only clients on this machine (loopback).

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

    /// Decides one request from its peer address and `Authorization` header.
    pub(crate) fn check(&self, peer: IpAddr, authorization: Option<&str>) -> Result<(), ApiError> {
        match self {
            AdminAccess::LoopbackOnly if is_loopback(peer) => Ok(()),
            AdminAccess::LoopbackOnly => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "no admin token is configured, so the admin API answers only to loopback clients",
            )),
            AdminAccess::Token(expected) => {
                let given = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim)
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

/// Middleware guarding the admin routes.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.options.admin.check(peer.ip(), authorization) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            tracing::info!(%peer, status = error.status.as_u16(), "admin request refused");
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

    #[test]
    fn without_a_token_only_loopback_clients_get_in() {
        let access = AdminAccess::from_token(None);
        assert_eq!(status(access.check(LOCAL, None)), None);
        assert_eq!(status(access.check("::1".parse().unwrap(), None)), None);
        assert_eq!(
            status(access.check("::ffff:127.0.0.1".parse().unwrap(), None)),
            None
        );
        assert_eq!(status(access.check(REMOTE, None)), Some(403));
        assert_eq!(
            status(access.check(REMOTE, Some("Bearer anything"))),
            Some(403)
        );
    }

    #[test]
    fn with_a_token_everyone_needs_it_even_on_loopback() {
        let access = AdminAccess::from_token(Some("s3cret".into()));
        assert_eq!(status(access.check(REMOTE, Some("Bearer s3cret"))), None);
        assert_eq!(status(access.check(LOCAL, None)), Some(401));
        assert_eq!(status(access.check(LOCAL, Some("Bearer s3cre"))), Some(401));
        assert_eq!(
            status(access.check(LOCAL, Some("Bearer s3cret!"))),
            Some(401)
        );
        assert_eq!(status(access.check(LOCAL, Some("Basic s3cret"))), Some(401));
    }

    #[test]
    fn an_empty_token_means_no_token() {
        assert!(matches!(
            AdminAccess::from_token(Some(String::new())),
            AdminAccess::LoopbackOnly
        ));
    }
}
