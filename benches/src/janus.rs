//! The same load driven through Janus's videoroom plugin and its WebSocket API
//! (`janus-protocol`): a session and a plugin handle per participant; a publisher creates the
//! room if needed, joins as publisher and configures with its offer; a subscriber joins the
//! publisher's feed, answers Janus's offer and starts. The PeerConnections, streams and counters
//! are the same as against roomcast.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;

use crate::peer::{self, Participant, PeerFactory, Shared};

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const KEEPALIVE: Duration = Duration::from_secs(20);

/// One Janus session with one videoroom handle, over its own WebSocket.
struct JanusWs {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    session: u64,
    handle: u64,
}

impl JanusWs {
    async fn open(addr: SocketAddr) -> Result<Self> {
        let mut request = format!("ws://{addr}/").into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .context("connecting to Janus's WebSocket")?;
        let mut ws = Self {
            stream,
            next: 0,
            session: 0,
            handle: 0,
        };
        let created = ws.call(json!({"janus": "create"}), false).await?;
        ws.session = id_of(&created)?;
        let attached = ws
            .call(
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
                false,
            )
            .await?;
        ws.handle = id_of(&attached)?;
        Ok(ws)
    }

    fn stamp(&mut self, mut body: Value) -> (String, Value) {
        self.next += 1;
        let tx = format!("t{}", self.next);
        body["transaction"] = json!(tx);
        if self.session != 0 {
            body["session_id"] = json!(self.session);
        }
        if self.handle != 0 {
            body["handle_id"] = json!(self.handle);
        }
        (tx, body)
    }

    async fn send(&mut self, body: Value) -> Result<String> {
        let (tx, body) = self.stamp(body);
        self.stream
            .send(Message::Text(body.to_string().into()))
            .await?;
        Ok(tx)
    }

    /// Sends a request and returns its reply: the synchronous `success`, or with `event` the
    /// asynchronous `event` that follows the `ack`.
    async fn call(&mut self, body: Value, event: bool) -> Result<Value> {
        let tx = self.send(body).await?;
        tokio::time::timeout(REPLY_TIMEOUT, async {
            loop {
                let Some(frame) = self.stream.next().await else {
                    bail!("Janus closed the WebSocket")
                };
                let Message::Text(text) = frame? else {
                    continue;
                };
                let m: Value = serde_json::from_str(&text)?;
                if m["transaction"] != json!(tx) {
                    continue;
                }
                match m["janus"].as_str() {
                    Some("error") => bail!("Janus error: {m}"),
                    Some("ack") if event => continue,
                    _ => {}
                }
                if let Some(err) = m["plugindata"]["data"].get("error") {
                    bail!("videoroom error: {err}");
                }
                return Ok(m);
            }
        })
        .await
        .map_err(|_| anyhow!("Janus did not reply within {REPLY_TIMEOUT:?}"))?
    }

    async fn message(&mut self, body: Value, jsep: Option<Value>, event: bool) -> Result<Value> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            m["jsep"] = jsep;
        }
        self.call(m, event).await
    }
}

fn id_of(reply: &Value) -> Result<u64> {
    reply["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no id in Janus reply: {reply}"))
}

fn sdp_of(reply: &Value) -> Result<String> {
    reply["jsep"]["sdp"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no jsep in Janus reply: {reply}"))
}

/// After setup: trickles our candidates, keeps the session alive, and drains Janus's events.
async fn background(mut ws: JanusWs, mut candidates: mpsc::UnboundedReceiver<Value>) {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    loop {
        tokio::select! {
            Some(c) = candidates.recv() => {
                let candidate = if c["candidate"].is_null() {
                    json!({"completed": true})
                } else {
                    c["candidate"].clone()
                };
                if ws.send(json!({"janus": "trickle", "candidate": candidate})).await.is_err() {
                    return;
                }
            }
            _ = keepalive.tick() => {
                if ws.send(json!({"janus": "keepalive"})).await.is_err() {
                    return;
                }
            }
            frame = ws.stream.next() => {
                if !matches!(frame, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

async fn local_sdp(pc: &RTCPeerConnection) -> Result<String> {
    Ok(pc
        .local_description()
        .await
        .context("no local description")?
        .sdp)
}

/// Janus room ids are numbers.
pub fn room_id(room: usize) -> u64 {
    1000 + room as u64
}

/// Joins `room` as a publisher (creating the room first if `create`), sends the stream, and
/// returns the participant, whose id is its Janus feed id.
pub async fn join_publisher(
    factory: &PeerFactory,
    addr: SocketAddr,
    room: u64,
    create: bool,
    shared: &Arc<Shared>,
) -> Result<Participant> {
    let mut ws = JanusWs::open(addr).await?;
    if create {
        ws.message(
            json!({"request": "create", "room": room, "publishers": 16, "bitrate": 0,
                   "audiocodec": "opus", "videocodec": "vp8", "notify_joining": false,
                   "fir_freq": 0}),
            None,
            false,
        )
        .await
        .context("creating the Janus room")?;
    }
    let joined = ws
        .message(
            json!({"request": "join", "ptype": "publisher", "room": room, "display": "publisher"}),
            None,
            true,
        )
        .await?;
    let feed = joined["plugindata"]["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no feed id in `joined`: {joined}"))?;
    let connection = factory.peer_connection().await?;
    let pc = Arc::clone(&connection.pc);
    let (candidates, candidates_rx) = mpsc::unbounded_channel();
    let arrivals = connection
        .sampling
        .as_ref()
        .map(|s| Arc::clone(&s.arrivals));
    peer::wire_callbacks(&pc, candidates, shared, None, None, arrivals);
    let (mut tasks, sent) = peer::start_publishing(&pc, shared).await?;
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = local_sdp(&pc).await?;
    let configured = ws
        .message(
            json!({"request": "configure", "audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": sdp})),
            true,
        )
        .await?;
    let answer = sdp_of(&configured)?;
    if std::env::var_os("ROOMCAST_BENCH_JANUS_LOG").is_some() {
        eprintln!("Janus answer to the publisher:\n{answer}\nour offer:\n{sdp}");
    }
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    tasks.push(tokio::spawn(background(ws, candidates_rx)));
    // Janus lists a feed to subscribers only once its media connection is up.
    let up = async {
        while pc.connection_state() != RTCPeerConnectionState::Connected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, up)
        .await
        .map_err(|_| anyhow!("the publisher's connection to Janus did not come up"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Participant::from_parts(
        feed.to_string(),
        Some(sent),
        connection,
        tasks,
    ))
}

/// Subscribes to `feed` in `room`: answers Janus's offer and starts.
pub async fn join_subscriber(
    factory: &PeerFactory,
    addr: SocketAddr,
    room: u64,
    feed: &str,
    shared: &Arc<Shared>,
) -> Result<Participant> {
    let feed_id: u64 = feed.parse().context("feed id")?;
    let mut ws = JanusWs::open(addr).await?;
    let attached = ws
        .message(
            json!({"request": "join", "ptype": "subscriber", "room": room, "feed": feed_id}),
            None,
            true,
        )
        .await?;
    let connection = factory.peer_connection().await?;
    let pc = Arc::clone(&connection.pc);
    let (candidates, candidates_rx) = mpsc::unbounded_channel();
    let arrivals = connection
        .sampling
        .as_ref()
        .map(|s| Arc::clone(&s.arrivals));
    peer::wire_callbacks(
        &pc,
        candidates,
        shared,
        Some(feed.to_owned()),
        None,
        arrivals,
    );
    pc.set_remote_description(RTCSessionDescription::offer(sdp_of(&attached)?)?)
        .await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer).await?;
    let sdp = local_sdp(&pc).await?;
    ws.message(
        json!({"request": "start", "room": room}),
        Some(json!({"type": "answer", "sdp": sdp})),
        true,
    )
    .await?;
    let id = format!("sub-{}", ws.handle);
    let tasks = vec![tokio::spawn(background(ws, candidates_rx))];
    Ok(Participant::from_parts(id, None, connection, tasks))
}
