//! roomcast's signaling protocol (docs/protocol.md) from the client side: one JSON object per
//! WebSocket text frame.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a join may take before the step gives up on it.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Signaling {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What `joined` told us.
pub struct Joined {
    pub id: String,
}

impl Signaling {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .with_context(|| format!("connecting to ws://{addr}/ws"))?;
        Ok(Self { stream })
    }

    pub async fn send(&mut self, message: Value) -> Result<()> {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .context("sending a signaling message")
    }

    /// The next JSON message; `None` once the server closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Value>> {
        while let Some(frame) = self.stream.next().await {
            match frame.context("reading a signaling message")? {
                Message::Text(text) => return Ok(Some(serde_json::from_str(&text)?)),
                Message::Close(_) => return Ok(None),
                _ => continue,
            }
        }
        Ok(None)
    }

    /// Sends `join` and waits for `joined`; `full` or `error` is an error.
    pub async fn join(&mut self, room: &str, name: &str) -> Result<Joined> {
        self.send(json!({"type": "join", "room": room, "name": name}))
            .await?;
        let reply = tokio::time::timeout(JOIN_TIMEOUT, async {
            loop {
                let Some(m) = self.recv().await? else {
                    bail!("server closed the connection before `joined`")
                };
                match m["type"].as_str() {
                    Some("joined") => return Ok(m),
                    Some("full") | Some("error") => bail!("join refused: {m}"),
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no `joined` within {JOIN_TIMEOUT:?}"))??;
        let id = reply["id"]
            .as_str()
            .ok_or_else(|| anyhow!("`joined` without an id: {reply}"))?
            .to_owned();
        Ok(Joined { id })
    }
}
