//! The admin API's contract: every route's shape and status codes, the auth rules (token on and
//! off, loopback only without one), the OpenAPI document, and the kick and close flows.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use roomcast_sfu::{Sfu, SfuConfig};
use roomcast_signaling::{AdminAccess, EdgeOptions};
use serde_json::{json, Value};
use support::client_peer::ClientPeer;
use support::{eventually, TestServer};
use tower::ServiceExt;

const LOOPBACK: &str = "127.0.0.1:50000";
const REMOTE: &str = "198.51.100.7:50000";

fn app(token: Option<&str>) -> (Router, Sfu) {
    let sfu = Sfu::new(SfuConfig::default()).unwrap();
    let options = EdgeOptions {
        admin: AdminAccess::from_token(token.map(str::to_owned)),
        ..EdgeOptions::default()
    };
    (roomcast_signaling::router(sfu.clone(), options), sfu)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(app: &Router, method: Method, path: &str, from: &str, token: Option<&str>) -> Reply {
    call_host(app, method, path, from, "localhost:8080", token).await
}

/// A request whose `Host` header is `host`.
async fn call_host(
    app: &Router,
    method: Method,
    path: &str,
    from: &str,
    host: &str,
    token: Option<&str>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = from.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, path: &str) -> Reply {
    call(app, Method::GET, path, LOOPBACK, None).await
}

const GUARDED: [(&str, &str); 5] = [
    ("GET", "/api/rooms"),
    ("GET", "/api/rooms/r1"),
    ("DELETE", "/api/rooms/r1"),
    ("DELETE", "/api/rooms/r1/participants/p1"),
    ("GET", "/metrics"),
];

#[tokio::test]
async fn without_a_token_loopback_clients_are_served_and_others_get_403() {
    let (app, _) = app(None);
    for (method, path) in GUARDED {
        let method: Method = method.parse().unwrap();
        let local = call(&app, method.clone(), path, LOOPBACK, None).await;
        assert!(
            local.status != StatusCode::FORBIDDEN && local.status != StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let remote = call(&app, method, path, REMOTE, None).await;
        assert_eq!(remote.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(remote.json()["error"], "forbidden");
    }
    assert_eq!(
        call(&app, Method::GET, "/admin", REMOTE, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, Method::GET, "/admin", LOOPBACK, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_token_a_loopback_request_naming_another_host_gets_403() {
    // DNS rebinding: a page on evil.example, its name now resolving to 127.0.0.1, reaches the
    // server from loopback but names its own site in Host.
    let (app, _) = app(None);
    for (method, path) in GUARDED {
        let method: Method = method.parse().unwrap();
        for host in ["evil.example", "evil.example:8080"] {
            let reply = call_host(&app, method.clone(), path, LOOPBACK, host, None).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} for {host}");
        }
        let named = call_host(&app, method, path, LOOPBACK, "127.0.0.1:8080", None).await;
        assert_ne!(named.status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn admin_answers_are_not_cached() {
    let (app, _) = app(None);
    let reply = get(&app, "/api/rooms").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn with_a_token_every_client_needs_it() {
    let (app, _) = app(Some("s3cret"));
    for (method, path) in GUARDED {
        let method: Method = method.parse().unwrap();
        for (from, token) in [(LOOPBACK, None), (REMOTE, None), (REMOTE, Some("wrong"))] {
            let reply = call(&app, method.clone(), path, from, token).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} from {from}"
            );
            assert_eq!(reply.json()["error"], "unauthorized");
            assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
        let reply = call(&app, method.clone(), path, REMOTE, Some("s3cret")).await;
        assert!(
            reply.status != StatusCode::UNAUTHORIZED && reply.status != StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        call(&app, Method::GET, "/admin", REMOTE, None).await.status,
        StatusCode::OK,
        "the dashboard shell holds no data; it asks for the token"
    );
}

#[tokio::test]
async fn health_and_the_openapi_document_need_no_auth() {
    let (app, _) = app(Some("s3cret"));
    let health = call(&app, Method::GET, "/healthz", REMOTE, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let doc = call(&app, Method::GET, "/api/openapi.json", REMOTE, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.json()["openapi"].as_str().unwrap().starts_with('3'));
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    let (app, _) = app(None);
    let doc = get(&app, "/api/openapi.json").await.json();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "DELETE /api/recordings/{id}",
            "DELETE /api/rooms/{room}",
            "DELETE /api/rooms/{room}/participants/{id}",
            "DELETE /api/rooms/{room}/recording",
            "GET /api/nodes",
            "GET /api/openapi.json",
            "GET /api/recordings",
            "GET /api/recordings/{id}",
            "GET /api/rooms",
            "GET /api/rooms/{room}",
            "GET /healthz",
            "GET /metrics",
            "POST /api/rooms/{room}/recording",
        ]
    );
    for entry in &documented {
        let (method, path) = entry.split_once(' ').unwrap();
        let concrete = path.replace("{room}", "nowhere").replace("{id}", "nobody");
        let reply = call(&app, method.parse().unwrap(), &concrete, LOOPBACK, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{entry} is not routed"
        );
        if reply.status == StatusCode::NOT_FOUND {
            assert_eq!(reply.json()["error"], "not_found", "{entry} is not routed");
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for schema in [
        "RoomView",
        "ParticipantView",
        "TrackView",
        "NodeView",
        "ErrorBody",
        "RecordingView",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn unknown_rooms_and_participants_are_404_with_a_json_error() {
    let (app, _) = app(None);
    for (method, path) in [
        (Method::GET, "/api/rooms/nowhere"),
        (Method::DELETE, "/api/rooms/nowhere"),
        (Method::DELETE, "/api/rooms/nowhere/participants/p1"),
        (Method::GET, "/api/rooms/bad%20id"),
    ] {
        let reply = call(&app, method, path, LOOPBACK, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["error"], "not_found");
        assert!(reply.json()["message"].as_str().is_some());
    }
    assert_eq!(get(&app, "/api/rooms").await.json(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_show_participants_tracks_bitrates_and_candidates() {
    let server = TestServer::start(SfuConfig::default()).await;
    let a = ClientPeer::join(&server, "observed", "Ada").await;
    let b = ClientPeer::join(&server, "observed", "Bob").await;
    let app = roomcast_signaling::router(server.sfu.clone(), EdgeOptions::default());
    eventually("bitrates in both directions", || async {
        let room = get(&app, "/api/rooms/observed").await.json();
        room["participants"].as_array().is_some_and(|ps| {
            ps.len() == 2
                && ps.iter().all(|p| {
                    let flowing = |dir: &str| {
                        p[dir].as_array().is_some_and(|ts| {
                            ts.len() == 2 && ts.iter().all(|t| t["bitrate_bps"].as_u64() > Some(0))
                        })
                    };
                    flowing("published") && flowing("forwarded")
                })
        })
    })
    .await;
    let room = get(&app, "/api/rooms/observed").await.json();
    assert_eq!(room["id"], "observed");
    assert_eq!(room["participant_count"], 2);
    assert!(room["created_ms"].as_u64().unwrap() > 1_700_000_000_000);
    let ada = &room["participants"][0];
    assert_eq!(ada["name"], "Ada");
    assert_eq!(ada["id"], a.id.as_str());
    assert_eq!(ada["connection_state"], "connected");
    assert_eq!(ada["candidate"]["local"], "host");
    // A client's checks may arrive before its trickled candidate: then it is peer-reflexive.
    let remote = ada["candidate"]["remote"].as_str().unwrap();
    assert!(["host", "prflx"].contains(&remote), "{remote}");
    let kinds: Vec<_> = ada["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"audio") && kinds.contains(&"video"));
    for track in ada["forwarded"].as_array().unwrap() {
        assert_eq!(track["publisher"], b.id.as_str());
        assert!(track["packets"].as_u64().unwrap() > 0);
        for field in [
            "codec",
            "packets_lost",
            "jitter_ms",
            "keyframe_requests",
            "nacks",
        ] {
            assert!(!track[field].is_null(), "{field}");
        }
    }
    let listed = get(&app, "/api/rooms").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let metrics = get(&app, "/metrics").await;
    assert!(metrics.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text();
    for line in [
        "roomcast_rooms 1",
        "roomcast_participants 2",
        "roomcast_published_tracks 4",
        "roomcast_forwarded_tracks 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicking_tells_the_participant_closes_its_connection_and_tells_the_others() {
    let server = TestServer::start(SfuConfig::default()).await;
    let app = roomcast_signaling::router(server.sfu.clone(), EdgeOptions::default());
    let mut ada = server.ws().await;
    ada.join("kick", "Ada").await;
    let mut bob = server.ws().await;
    let bob_id = bob.join("kick", "Bob").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ada.recv_type("participant_joined").await;

    let reply = call(
        &app,
        Method::DELETE,
        &format!("/api/rooms/kick/participants/{bob_id}"),
        LOOPBACK,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let kicked = bob.recv_skipping_candidates().await;
    assert_eq!(kicked["type"], "kicked");
    assert_eq!(kicked["reason"], "kicked");
    assert_eq!(kicked["room"], "kick");
    assert!(
        bob.recv().await.is_none(),
        "the connection closes after `kicked`"
    );
    assert_eq!(
        ada.recv_type("participant_left").await["id"],
        bob_id.as_str()
    );
    let again = call(
        &app,
        Method::DELETE,
        &format!("/api/rooms/kick/participants/{bob_id}"),
        LOOPBACK,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_room_removes_everyone_and_the_room() {
    let server = TestServer::start(SfuConfig::default()).await;
    let app = roomcast_signaling::router(server.sfu.clone(), EdgeOptions::default());
    let mut people = Vec::new();
    for name in ["Ada", "Bob", "Cy"] {
        let mut ws = server.ws().await;
        ws.join("doomed", name).await;
        people.push(ws);
    }
    let mut bystander = server.ws().await;
    bystander.join("elsewhere", "Dee").await;

    let reply = call(&app, Method::DELETE, "/api/rooms/doomed", LOOPBACK, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    for ws in &mut people {
        let kicked = ws.recv_type("kicked").await;
        assert_eq!(kicked["reason"], "room_closed");
        assert!(ws.recv().await.is_none());
    }
    eventually("the room to disappear", || async {
        get(&app, "/api/rooms/doomed").await.status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        server.sfu.room("elsewhere").is_some(),
        "other rooms are untouched"
    );
}

#[tokio::test]
async fn signaling_errors_and_connections_show_in_metrics() {
    let server = TestServer::start(SfuConfig::default()).await;
    let mut ws = server.ws().await;
    ws.send_text("{oops").await;
    ws.recv_type("error").await;
    let url = format!("http://{}/metrics", server.addr);
    let text = http_get(&url).await;
    assert!(
        text.contains("roomcast_signaling_errors_total{code=\"bad_json\"} 1"),
        "{text}"
    );
    assert!(text.contains("roomcast_websocket_connections 1"), "{text}");
}

/// A bare HTTP/1.1 GET over TCP, enough for a loopback metrics scrape.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// A recordings directory holding one finished recording (its `.meta` as the recorder writes it)
/// and one left `recording` (by a server that was killed, once a server starts on it).
fn recordings_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "roomcast-api-recordings-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let meta = |state: &str| {
        format!("room=r\nparticipant=p1\nname=Ada\nkinds=video,audio\nstarted_ms=1000\nduration_ms=2500\nstate={state}\n")
    };
    std::fs::write(dir.join("1000-p1.meta"), meta("complete")).unwrap();
    std::fs::write(
        dir.join("1000-p1.webm"),
        b"\x1a\x45\xdf\xa3 not really webm",
    )
    .unwrap();
    std::fs::write(dir.join("2000-p2.meta"), meta("recording")).unwrap();
    std::fs::write(dir.join("2000-p2.webm"), b"").unwrap();
    dir
}

#[tokio::test]
async fn recordings_are_listed_downloaded_and_deleted_with_the_token_only() {
    let dir = recordings_dir();
    let sfu = Sfu::new(SfuConfig {
        recordings_dir: dir.clone(),
        ..SfuConfig::default()
    })
    .unwrap();
    let options = EdgeOptions {
        admin: AdminAccess::from_token(Some("s3cret".into())),
        ..EdgeOptions::default()
    };
    let app = roomcast_signaling::router(sfu, options);
    let token = Some("s3cret");
    // Written after the server started: as the recorder leaves a file it is writing.
    std::fs::write(
        dir.join("3000-p3.meta"),
        "room=r\nparticipant=p3\nname=Cy\nkinds=audio\nstarted_ms=3000\nduration_ms=0\nstate=recording\n",
    )
    .unwrap();
    for (method, path) in [
        (Method::GET, "/api/recordings"),
        (Method::GET, "/api/recordings/1000-p1"),
        (Method::DELETE, "/api/recordings/1000-p1"),
        (Method::POST, "/api/rooms/r/recording"),
        (Method::DELETE, "/api/rooms/r/recording"),
    ] {
        for from in [REMOTE, LOOPBACK] {
            let reply = call(&app, method.clone(), path, from, None).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} from {from}"
            );
            let wrong = call(&app, method.clone(), path, from, Some("nope")).await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
    assert!(
        dir.join("1000-p1.webm").exists(),
        "nothing deleted without the token"
    );

    let list = call(&app, Method::GET, "/api/recordings", REMOTE, token).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["recording", "complete", "interrupted"],
        "newest first (then by id); a file left `recording` when the server started is `interrupted`"
    );
    let done = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "1000-p1")
        .unwrap();
    assert_eq!(done["id"], "1000-p1");
    assert_eq!(done["room"], "r");
    assert_eq!(done["participant_id"], "p1");
    assert_eq!(done["participant_name"], "Ada");
    assert_eq!(done["kinds"], json!(["video", "audio"]));
    assert_eq!(done["started_ms"], 1000);
    assert_eq!(done["duration_ms"], 2500);
    assert_eq!(done["size"], 20);
    assert_eq!(done["state"], "complete");

    let file = call(&app, Method::GET, "/api/recordings/1000-p1", REMOTE, token).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers[header::CONTENT_TYPE], "video/webm");
    assert_eq!(
        file.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"1000-p1.webm\""
    );
    assert_eq!(file.body, std::fs::read(dir.join("1000-p1.webm")).unwrap());

    for path in [
        "/api/recordings/nothing",
        "/api/recordings/..%2F1000-p1",
        "/api/recordings/1000-p1.webm",
        "/api/recordings/%2Fetc%2Fpasswd",
    ] {
        let reply = call(&app, Method::GET, path, REMOTE, token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["error"], "not_found");
    }
    let busy = call(
        &app,
        Method::DELETE,
        "/api/recordings/3000-p3",
        REMOTE,
        token,
    )
    .await;
    assert_eq!(
        busy.status,
        StatusCode::CONFLICT,
        "a file being written stays"
    );
    let gone = call(
        &app,
        Method::DELETE,
        "/api/recordings/1000-p1",
        REMOTE,
        token,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(!dir.join("1000-p1.webm").exists() && !dir.join("1000-p1.meta").exists());
    let again = call(
        &app,
        Method::DELETE,
        "/api/recordings/1000-p1",
        REMOTE,
        token,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let nowhere = call(
        &app,
        Method::POST,
        "/api/rooms/nowhere/recording",
        REMOTE,
        token,
    )
    .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_are_told_when_their_room_is_recorded_newcomers_included() {
    let dir = recordings_dir();
    let server = TestServer::start(SfuConfig {
        recordings_dir: dir.clone(),
        ..SfuConfig::default()
    })
    .await;
    let app = roomcast_signaling::router(server.sfu.clone(), EdgeOptions::default());
    let recording = |method| call(&app, method, "/api/rooms/rec/recording", LOOPBACK, None);
    let mut ada = server.ws().await;
    ada.join("rec", "Ada").await;
    let start = recording(Method::POST).await;
    assert_eq!(start.status, StatusCode::CREATED);
    assert_eq!(start.json(), json!({"room": "rec", "recording": true}));
    assert_eq!(
        ada.recv_type("recording").await,
        json!({"type": "recording", "active": true})
    );
    assert_eq!(get(&app, "/api/rooms/rec").await.json()["recording"], true);
    let again = recording(Method::POST).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["error"], "conflict");

    let mut bob = server.ws().await;
    bob.join("rec", "Bob").await;
    assert_eq!(bob.recv_type("recording").await["active"], true);

    let stop = recording(Method::DELETE).await;
    assert_eq!(stop.status, StatusCode::NO_CONTENT);
    for ws in [&mut ada, &mut bob] {
        assert_eq!(ws.recv_type("recording").await["active"], false);
    }
    assert_eq!(get(&app, "/api/rooms/rec").await.json()["recording"], false);
    let not_recording = recording(Method::DELETE).await;
    assert_eq!(not_recording.status, StatusCode::CONFLICT);
    std::fs::remove_dir_all(dir).unwrap();
}
