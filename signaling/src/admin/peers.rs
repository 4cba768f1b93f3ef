//! Asking the other nodes of a cluster for what only they know (their rooms) or can do (kick,
//! close, record), over their admin API at the URL each registers (`--node-url`), with the operator's
//! own credentials.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::views::RoomView;

/// How long one node waits for another's answer: a node that takes longer is left out of the
/// listing rather than holding it up.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// The rooms that live on the node at `base` (`GET /api/rooms?scope=local`).
pub(crate) async fn rooms_of(
    base: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Vec<RoomView>, String> {
    let uri = format!("{}/api/rooms?scope=local", base.trim_end_matches('/'));
    let (status, body) = send(Method::GET, &uri, authorization).await?;
    if !status.is_success() {
        return Err(format!("{uri}: {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{uri}: {e}"))
}

/// Sends `method path` to the node at `base` and returns its status: an operator's kick, close
/// or recording order carried to the node the room lives on.
pub(crate) async fn request(
    method: Method,
    base: &str,
    path: &str,
    authorization: Option<&HeaderValue>,
) -> Result<StatusCode, String> {
    let uri = format!("{}{path}", base.trim_end_matches('/'));
    Ok(send(method, &uri, authorization).await?.0)
}

async fn send(
    method: Method,
    uri: &str,
    authorization: Option<&HeaderValue>,
) -> Result<(StatusCode, Bytes), String> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{uri}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = tokio::time::timeout(PEER_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("{uri}: no answer within {PEER_TIMEOUT:?}"))?
        .map_err(|e| format!("{uri}: {e}"))?;
    let status = response.status();
    let body = tokio::time::timeout(PEER_TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| format!("{uri}: body not complete within {PEER_TIMEOUT:?}"))?
        .map_err(|e| format!("{uri}: {e}"))?
        .to_bytes();
    Ok((status, body))
}
