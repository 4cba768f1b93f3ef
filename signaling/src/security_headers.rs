//! Security headers on every response: the pages load only their own scripts and styles, talk
//! only to their own origin, cannot be framed, and no content type is sniffed.

use axum::http::header::{
    HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::Response;

/// `connect-src 'self'` covers the page's own `ws:`/`wss:` origin in current browsers; media
/// elements play `srcObject` streams, which no directive governs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

pub(crate) async fn add(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
