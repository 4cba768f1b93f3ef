//! Test support: an in-process roomcast server on loopback, a raw WebSocket signaling client, and
//! a webrtc-rs client peer that publishes synthetic audio and video and counts what it receives.

#![allow(dead_code)]

pub mod binary;
pub mod client_data;
pub mod client_peer;
pub mod process;
pub mod redis_server;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast_sfu::{Sfu, SfuConfig};
use roomcast_signaling::EdgeOptions;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// roomcast's router served over plain HTTP on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub sfu: Sfu,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server; unless `config` names media addresses, media stays on IPv4 loopback.
    pub async fn start(config: SfuConfig) -> Self {
        Self::start_with(config, EdgeOptions::default()).await
    }

    /// Starts a server with these edge options (limits, tokens, origins).
    pub async fn start_with(mut config: SfuConfig, options: EdgeOptions) -> Self {
        if config.media_ips.is_empty() {
            config.media_ips = vec![std::net::Ipv4Addr::LOCALHOST.into()];
        }
        let sfu = Sfu::new(config).expect("sfu");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = roomcast_signaling::router(sfu.clone(), options);
        tokio::spawn(roomcast_signaling::serve_http(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            sfu,
            stop: Some(stop),
        }
    }

    /// A bare HTTP/1.1 GET from loopback (so the admin API answers without a token): the status
    /// code and the body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut response))
            .await
            .expect("timed out reading an HTTP response")
            .expect("read");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_owned())
    }

    pub async fn ws(&self) -> Ws {
        Ws::connect(self.addr).await
    }

    /// Waits until the server holds no rooms.
    pub async fn wait_until_empty(&self) {
        eventually("all rooms to be cleaned up", || async {
            self.sfu.rooms().is_empty()
        })
        .await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A signaling connection speaking raw JSON.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(addr: SocketAddr) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("websocket connect");
        Self { stream }
    }

    /// Connects from `local`, a loopback address of the caller's choosing (Linux answers all of
    /// 127.0.0.0/8): to the server, another client host.
    pub async fn try_connect_from(
        addr: SocketAddr,
        local: IpAddr,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        let stream = socket.connect(addr).await?;
        let url = format!("ws://{addr}/ws");
        let (stream, _) =
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await?;
        Ok(Self { stream })
    }

    pub async fn connect_from(addr: SocketAddr, local: IpAddr) -> Self {
        Self::try_connect_from(addr, local)
            .await
            .expect("websocket connect")
    }

    /// Sends the first frame of a text message and leaves the message unfinished; false when
    /// the server has already closed the connection.
    pub async fn send_unfinished(&mut self, bytes: usize) -> bool {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        let frame = Frame::message(vec![b'x'; bytes], OpCode::Data(Data::Text), false);
        self.stream.send(Message::Frame(frame)).await.is_ok()
    }

    /// Whether the server closes the connection within `limit` (reading, and so answering
    /// pings, meanwhile).
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// Sends a text message; false when the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.stream.send(Message::Text(text.into())).await.is_ok()
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::Binary(bytes.into()))
            .await
            .expect("ws send");
    }

    /// Sends a ping; the server may already have closed the connection, which is no error here.
    pub async fn send_ping(&mut self) {
        let _ = self.stream.send(Message::Ping(Vec::new().into())).await;
    }

    /// The next JSON message, or `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(TIMEOUT, self.stream.next())
                .await
                .expect("timed out waiting for a server message")?;
            match frame.ok()? {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("server JSON"))
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips messages until one of `kind` arrives.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.recv().await.expect("connection closed");
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The next message that is not a trickled candidate.
    pub async fn recv_skipping_candidates(&mut self) -> Value {
        loop {
            let message = self.recv().await.expect("connection closed");
            if message["type"] != "candidate" {
                return message;
            }
        }
    }

    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        self.send(json!({"type": "join", "room": room, "name": name}))
            .await;
        self.recv_type("joined").await
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Polls `check` until it holds, failing the test after [`TIMEOUT`].
/// A UDP port nobody listens on right now, for a server's `--udp-port`.
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.local_addr().unwrap().port()
}

pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
