//! Security headers on every response: the pages load only their own scripts and styles, talk
//! only to their own origin, cannot be framed, and no content type is sniffed; over HTTPS the
//! browser is told to use nothing else for a year (HSTS).

use axum::extract::Request;
use axum::http::header::{
    HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

use crate::listener::Accepted;

/// `connect-src 'self'` covers the page's own `ws:`/`wss:` origin in current browsers; media
/// elements play `srcObject` streams, which no directive governs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// Browsers ignore it from a certificate they had to be told to accept, so a self-signed
/// development certificate does not pin anyone to HTTPS.
const HSTS: &str = "max-age=31536000";

pub(crate) async fn add(request: Request, next: Next) -> Response {
    let tls = request
        .extensions()
        .get::<Accepted>()
        .is_some_and(|a| a.tls);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if tls {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
