//! roomcast's admin API from the bench: `GET /api/rooms/{room}` and `POST
//! /api/rooms/{room}/recording` over loopback (no token needed there), as plain HTTP/1.0 so the
//! body needs no chunked decoding.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts recording a room.
pub async fn start_recording(addr: SocketAddr, room: &str) -> Result<()> {
    request(addr, "POST", &format!("/api/rooms/{room}/recording"), "201").await?;
    Ok(())
}

/// The room's JSON (participants with their `published` and `forwarded` tracks).
pub async fn room(addr: SocketAddr, room: &str) -> Result<Value> {
    let body = request(addr, "GET", &format!("/api/rooms/{room}"), "200").await?;
    serde_json::from_str(&body).context("parsing the admin API's JSON")
}

/// `GET path` as JSON (e.g. `/api/nodes`).
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<Value> {
    let body = request(addr, "GET", path, "200").await?;
    serde_json::from_str(&body).context("parsing the admin API's JSON")
}

/// `GET path` as text (e.g. `/metrics`).
pub async fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    request(addr, "GET", path, "200").await
}

/// The value of an unlabelled sample `name` in Prometheus's text format (e.g.
/// `roomcast_received_packets_total 123`).
pub fn prometheus_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<u64>().ok()
    })
}

/// One request; the body of an answer with the expected status.
async fn request(addr: SocketAddr, method: &str, path: &str, status: &str) -> Result<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, anyhow::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| anyhow!("no admin API answer within 5 s"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    anyhow::ensure!(
        head.starts_with(&format!("HTTP/1.1 {status}"))
            || head.starts_with(&format!("HTTP/1.0 {status}")),
        "admin API: {}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_owned())
}

/// A participant's entry in a room's JSON.
pub fn participant<'a>(room: &'a Value, id: &str) -> Option<&'a Value> {
    room["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str() == Some(id))
}

/// The simulcast layer the server forwards a participant on its (first) video track; `None`
/// while paused or unknown.
pub fn forwarded_video_layer(participant: &Value) -> Option<u64> {
    participant["forwarded"]
        .as_array()?
        .iter()
        .find(|f| f["kind"].as_str() == Some("video"))?["layer"]
        .as_u64()
}

/// A published video track's layers as the server sees them: (rid, bitrate, width, height).
pub fn published_layers(participant: &Value) -> Vec<(String, u64, u64, u64)> {
    let Some(video) = participant["published"].as_array().and_then(|p| {
        p.iter()
            .find(|t| t["kind"].as_str() == Some("video"))
            .cloned()
    }) else {
        return Vec::new();
    };
    video["layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .map(|l| {
                    (
                        l["rid"].as_str().unwrap_or_default().to_owned(),
                        l["bitrate_bps"].as_u64().unwrap_or(0),
                        l["width"].as_u64().unwrap_or(0),
                        l["height"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_unlabelled_prometheus_sample() {
        let text = "# HELP roomcast_received_packets_total RTP packets received.\n\
                    # TYPE roomcast_received_packets_total counter\n\
                    roomcast_received_packets_total 1234\n\
                    roomcast_received_packets_total_other 9\n\
                    roomcast_rtcp_feedback_total{type=\"pli\"} 3\n";
        assert_eq!(
            prometheus_value(text, "roomcast_received_packets_total"),
            Some(1234)
        );
        assert_eq!(prometheus_value(text, "roomcast_rtcp_feedback_total"), None);
        assert_eq!(
            prometheus_value(text, "roomcast_dropped_packets_total"),
            None
        );
    }
}
