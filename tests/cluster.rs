//! Several roomcast binaries as one cluster through a real Redis: the node registry and
//! `/api/nodes`; rooms that live on one node, joined through any node (the signaling relayed to
//! the owner, the media straight to it), placed on the least loaded node; a lost owner; admin
//! across nodes.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::binary::Roomcast;
use support::client_peer::{ClientPeer, NetworkType};
use support::redis_server::RedisServer;
use support::Ws;

/// `/api/nodes` of `node` as JSON.
fn nodes(node: &Roomcast) -> Vec<Value> {
    let response = node.get("/api/nodes");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

/// `N` nodes on `redis` (with `extra` arguments), once each lists them all.
fn start_cluster<const N: usize>(redis: &RedisServer, extra: &[&str]) -> [Roomcast; N] {
    let args: Vec<&str> = ["--redis", redis.url.as_str()]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let cluster: [Roomcast; N] = std::array::from_fn(|_| Roomcast::start(&args));
    wait_for("every node listed", || nodes(&cluster[0]).len() == N);
    cluster
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_node_lists_every_serving_node_and_a_stopped_one_leaves_the_list() {
    let redis = RedisServer::start();
    let a = Roomcast::start(&["--redis", &redis.url]);
    let mut b = Roomcast::start(&["--redis", &redis.url]);
    let urls = |list: &[Value]| {
        let mut urls: Vec<String> = list
            .iter()
            .map(|n| n["url"].as_str().unwrap().to_owned())
            .collect();
        urls.sort();
        urls
    };
    let mut expected = vec![
        format!("http://127.0.0.1:{}", a.addr.port()),
        format!("http://127.0.0.1:{}", b.addr.port()),
    ];
    expected.sort();
    wait_for("both nodes on both nodes' lists", || {
        urls(&nodes(&a)) == expected && urls(&nodes(&b)) == expected
    });
    for node in nodes(&a) {
        assert_eq!(node["state"], "serving");
        assert_eq!(node["rooms"], 0);
        assert!(node["id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    b.terminate();
    assert!(b.wait(Duration::from_secs(10)).success());
    assert_eq!(
        urls(&nodes(&a)),
        vec![format!("http://127.0.0.1:{}", a.addr.port())],
        "a node that shuts down takes itself off the list at once"
    );
}

#[test]
fn a_node_killed_outright_lapses_from_the_list() {
    let redis = RedisServer::start();
    let [a, b] = start_cluster(&redis, &[]);
    drop(b); // SIGKILL
    let killed = Instant::now();
    wait_for("the killed node to lapse", || nodes(&a).len() == 1);
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn without_redis_a_node_lists_itself_alone() {
    let node = Roomcast::start(&[]);
    let list = nodes(&node);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "standalone");
    assert_eq!(list[0]["state"], "serving");
}

#[test]
fn a_node_refuses_to_start_when_its_redis_cannot_be_reached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Roomcast::command()
        .args([
            "--http",
            "127.0.0.1:0",
            "--https",
            "off",
            "--redis",
            &format!("redis://127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

/// What a fresh connection to `node` is told when it asks to join `room`.
async fn try_join(node: &Roomcast, room: &str) -> (Value, Ws) {
    let mut ws = Ws::connect(node.addr).await;
    ws.send(json!({"type": "join", "room": room, "name": "Ada"}))
        .await;
    let reply = ws.recv_skipping_candidates().await;
    (reply, ws)
}

async fn eventually_joins(node: &Roomcast, room: &str, what: &str) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (reply, ws) = try_join(node, room).await;
        if reply["type"] == "joined" {
            return ws;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {reply}"
        );
        ws.close().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The id of the node listening at `node`'s address, as `/api/nodes` lists it.
fn id_of(node: &Roomcast) -> Value {
    let url = format!("http://127.0.0.1:{}", node.addr.port());
    nodes(node)
        .into_iter()
        .find(|n| n["url"] == url.as_str())
        .unwrap()["id"]
        .clone()
}

/// `(room, owner node, participants)` for every room `/api/rooms` of `node` lists.
fn rooms(node: &Roomcast) -> Vec<(Value, Value, Value)> {
    get_json(node, "/api/rooms")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].clone(),
                r["node"].clone(),
                r["participant_count"].clone(),
            )
        })
        .collect()
}

async fn join(node: &Roomcast, room: &str, name: &str) -> ClientPeer {
    let peer = ClientPeer::join_at(node.addr, room, name, NetworkType::Udp4).await;
    peer.wait_connected().await;
    peer
}

async fn sees_media_of(peer: &ClientPeer, publisher: &ClientPeer) {
    let what = format!("{} to receive {}'s audio and video", peer.id, publisher.id);
    support::eventually(&what, || async {
        let received = peer.received_from(&publisher.id);
        received.audio > 10 && received.video > 10
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_lives_on_one_node_and_a_join_through_another_is_relayed_there() {
    let redis = RedisServer::start();
    let [a, b] = start_cluster(&redis, &[]);
    let ada = join(&a, "standup", "Ada").await;
    // Bob and Cy come through the node that does not hold the room.
    let other = if rooms(&a)[0].1 == id_of(&a) { &b } else { &a };
    let bob = join(other, "standup", "Bob").await;
    sees_media_of(&ada, &bob).await;
    sees_media_of(&bob, &ada).await;
    let listed = rooms(&a);
    assert_eq!(listed.len(), 1, "one room, on one node: {listed:?}");
    assert_eq!(listed[0].2, json!(2));
    assert_eq!(rooms(&b), listed);

    // Every message of the protocol crosses: a mute (client to owner, and the owner's update to
    // the other), the data channel (which goes to the owner with the media anyway), a leave.
    bob.send(json!({"type": "mute", "kind": "audio", "muted": true}));
    support::eventually("Ada to hear that Bob muted", || async {
        ada.messages_of("participant_updated").iter().any(|m| {
            m["participant"]["id"] == bob.id.as_str() && m["participant"]["audio_muted"] == true
        })
    })
    .await;
    ada.data.send(r#"{"payload": "hello"}"#).await;
    support::eventually("Bob to get Ada's message", || async {
        bob.data.received().iter().any(|m| m["payload"] == "hello")
    })
    .await;
    let bob_id = bob.id.clone();
    bob.leave().await;
    support::eventually("Ada to see Bob leave", || async {
        ada.saw_leave_of(&bob_id)
    })
    .await;
    assert_eq!(rooms(&a)[0].2, json!(1));
    // One who vanishes without a word (its WebSocket to the entry node just closes) is out of
    // the owner's room as promptly.
    let cy = join(other, "standup", "Cy").await;
    assert_eq!(rooms(&a)[0].2, json!(2));
    let cy_id = cy.id.clone();
    let vanished = Instant::now();
    cy.close().await;
    support::eventually("Ada to see Cy leave", || async { ada.saw_leave_of(&cy_id) }).await;
    assert!(
        vanished.elapsed() < Duration::from_secs(3),
        "{:?}",
        vanished.elapsed()
    );

    // Once the room closes its claim is released (within a heartbeat or two).
    ada.leave().await;
    wait_for("the room to close and its claim to go", || {
        rooms(&b).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_room_opens_on_the_least_loaded_node_whichever_node_is_asked() {
    let redis = RedisServer::start();
    let [a, b] = start_cluster(&redis, &[]);
    let _first = join(&a, "first", "Ada").await;
    let owner = rooms(&a)[0].1.clone();
    wait_for("the owner's load to show its participant", || {
        nodes(&a)
            .iter()
            .any(|n| n["id"] == owner && n["participants"] == 1)
    });
    let _second = join(&a, "second", "Bob").await;
    let placed: Vec<Value> = rooms(&b).into_iter().map(|r| r.1).collect();
    assert_eq!(placed.len(), 2);
    assert_ne!(
        placed[0], placed[1],
        "the second room goes to the idle node"
    );
    assert!([id_of(&a), id_of(&b)].contains(&placed[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_owner_is_killed_the_others_are_told_node_lost_and_meet_again_on_a_survivor() {
    let redis = RedisServer::start();
    let nodes_: [Roomcast; 3] = start_cluster(&redis, &[]);
    let mut peers = Vec::new();
    for (node, name) in nodes_.iter().zip(["Ada", "Bob", "Cy"]) {
        peers.push(join(node, "retro", name).await);
    }
    let owner = rooms(&nodes_[0])[0].1.clone();
    let dead = nodes_.iter().position(|n| id_of(n) == owner).unwrap();
    let [n0, n1, n2] = nodes_;
    let mut nodes_: Vec<Option<Roomcast>> = vec![Some(n0), Some(n1), Some(n2)];
    let killed_at = Instant::now();
    drop(nodes_[dead].take()); // SIGKILL
    let survivors: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    for &i in &survivors {
        let peer = &peers[i];
        support::eventually("the client to be told its room's node is lost", || async {
            peer.messages_of("kicked")
                .iter()
                .any(|m| m["reason"] == "node_lost")
        })
        .await;
    }
    println!("node_lost told after {:?}", killed_at.elapsed());
    // The clients join again through their own entry nodes, as the page does.
    let mut again = Vec::new();
    for &i in &survivors {
        let node = nodes_[i].as_ref().unwrap();
        again.push(ClientPeer::join_at(node.addr, "retro", "again", NetworkType::Udp4).await);
    }
    sees_media_of(&again[0], &again[1]).await;
    sees_media_of(&again[1], &again[0]).await;
    let elapsed = killed_at.elapsed();
    println!("media again after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let listed = rooms(nodes_[survivors[0]].as_ref().unwrap());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_ne!(listed[0].1, owner, "re-created on a surviving node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_joins_are_unavailable_and_come_back_with_it() {
    let redis = RedisServer::start();
    let port = redis.port;
    // The participant that keeps the room running never sets up media: with the default peer
    // timeout (10 s) it would be removed, and its room closed, while Redis is still coming back
    // (seen on a slow machine: the room was never claimed again because it no longer existed).
    let node = Roomcast::start(&["--redis", &redis.url, "--peer-timeout", "120"]);
    let (joined, _running) = try_join(&node, "before").await;
    assert_eq!(joined["type"], "joined");

    redis.stop();
    let (refused, _) = try_join(&node, "during").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");

    tokio::time::sleep(Duration::from_secs(7)).await; // past the lease of the running room's claim
    let redis = RedisServer::start_on(port);
    eventually_joins(&node, "after", "joins to work again once Redis is back").await;

    // The room that kept running here is claimed again: a join through another node is
    // relayed to it rather than opening a second room of that name.
    wait_for("the running room to be claimed again", || {
        let owner = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "GET", "roomcast:room:before"])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&owner.stdout).trim().is_empty()
    });
    let other = Roomcast::start(&["--redis", &redis.url]);
    let (joined, _bob) = try_join(&other, "before").await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let before: Vec<_> = rooms(&other)
        .into_iter()
        .filter(|r| r.0 == "before")
        .collect();
    assert_eq!(before, vec![(json!("before"), id_of(&node), json!(2))]);
}

/// `GET path` on `node` as JSON.
fn get_json(node: &Roomcast, path: &str) -> Value {
    let response = node.get(path);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_every_room_once_with_its_node_and_kicks_closes_and_records_there() {
    let redis = RedisServer::start();
    let recordings =
        std::env::temp_dir().join(format!("roomcast-cluster-rec-{}", std::process::id()));
    let dir = recordings.to_str().unwrap();
    let [a, b] = start_cluster(&redis, &["--recordings-dir", dir]);
    let (alpha_joined, mut alpha) = try_join(&a, "alpha").await;
    let (_, mut beta) = try_join(&b, "beta").await;
    let listed = rooms(&a);
    assert_eq!(rooms(&b), listed, "every node lists the same rooms");
    let ids: Vec<&Value> = listed.iter().map(|r| &r.0).collect();
    assert_eq!(ids, [&json!("alpha"), &json!("beta")]);
    for (_, node, count) in &listed {
        assert!([id_of(&a), id_of(&b)].contains(node), "{listed:?}");
        assert_eq!(count, &json!(1));
    }
    let local = get_json(&a, "/api/rooms?scope=local");
    let here = listed.iter().filter(|r| r.1 == id_of(&a)).count();
    assert_eq!(local.as_array().unwrap().len(), here, "{local}");

    // Kick and close go to the node the room lives on, whichever node the operator asks.
    let delete = |node: &Roomcast, path: &str| {
        node.request(&format!(
            "DELETE {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            node.addr
        ))
    };
    // Each order goes to the node that does not hold the room.
    let elsewhere = |room: &str| {
        let owner = listed.iter().find(|r| r.0 == room).unwrap().1.clone();
        if owner == id_of(&a) {
            &b
        } else {
            &a
        }
    };
    let closed = delete(elsewhere("beta"), "/api/rooms/beta");
    assert!(closed.starts_with("HTTP/1.1 204"), "{closed}");
    assert_eq!(beta.recv_type("kicked").await["reason"], "room_closed");
    let node = elsewhere("alpha");
    let started = node.request(&format!(
        "POST /api/rooms/alpha/recording HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        node.addr
    ));
    assert!(started.starts_with("HTTP/1.1 201"), "{started}");
    assert_eq!(alpha.recv_type("recording").await["active"], true);
    let stopped = delete(node, "/api/rooms/alpha/recording");
    assert!(stopped.starts_with("HTTP/1.1 204"), "{stopped}");
    assert_eq!(alpha.recv_type("recording").await["active"], false);
    let ada = alpha_joined["id"].as_str().unwrap();
    let kicked = delete(node, &format!("/api/rooms/alpha/participants/{ada}"));
    assert!(kicked.starts_with("HTTP/1.1 204"), "{kicked}");
    assert_eq!(alpha.recv_type("kicked").await["reason"], "kicked");
    let missing = delete(&b, "/api/rooms/nowhere");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let _ = std::fs::remove_dir_all(&recordings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_with_sigterm_sends_its_participants_to_a_serving_node_and_exits() {
    let redis = RedisServer::start();
    let mut cluster: [Roomcast; 3] = start_cluster(&redis, &[]);
    let opener = join(&cluster[0], "planning", "Opener").await;
    let owner = rooms(&cluster[0])[0].1.clone();
    let draining = cluster.iter().position(|n| id_of(n) == owner).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != draining).collect();
    let ada = join(&cluster[others[0]], "planning", "Ada").await;
    let bob = join(&cluster[others[1]], "planning", "Bob").await;
    sees_media_of(&ada, &bob).await;
    opener.close().await;

    cluster[draining].terminate();
    let status = cluster[draining].wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // It gave its room up on the way out, rather than leave the claim to lapse: the rejoins
    // below need not wait for a lease.
    let claim = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "GET",
            "roomcast:room:planning",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&claim.stdout).trim(),
        "",
        "the drained node's claim is gone"
    );
    for peer in [&ada, &bob] {
        support::eventually("the client to be told to join again", || async {
            peer.messages_of("kicked")
                .iter()
                .any(|m| m["reason"] == "node_draining")
        })
        .await;
    }
    let survivor = &cluster[others[0]];
    wait_for("the drained node gone from the list", || {
        nodes(survivor).iter().all(|n| n["id"] != owner)
    });
    let again: Vec<ClientPeer> = vec![
        join(&cluster[others[0]], "planning", "Ada").await,
        join(&cluster[others[1]], "planning", "Bob").await,
    ];
    sees_media_of(&again[0], &again[1]).await;
    let listed = rooms(survivor);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_ne!(listed[0].1, owner);
    assert_eq!(listed[0].2, json!(2), "everyone is back in the one room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_another_node_claimed_meanwhile_is_handed_over_and_its_participants_told_to_rejoin()
{
    let redis = RedisServer::start();
    let [a, b] = start_cluster(&redis, &[]);
    let (joined, mut ada) = try_join(&a, "split").await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let holder = rooms(&a)[0].1.clone();
    let (holder_node, other) = if holder == id_of(&a) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    // What a Redis that restarted empty allows: the other node claims the room and opens its own.
    let other_id = id_of(other);
    let set = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "SET", "roomcast:room:split"])
        .arg(other_id.as_str().unwrap())
        .output()
        .unwrap();
    assert!(set.status.success());
    let (joined, _bob) = try_join(other, "split").await;
    assert_eq!(joined["type"], "joined", "{joined}");
    // The node that held it hands it over at its next heartbeat: its people are told to join
    // again, which takes them to the one room.
    let kicked = ada.recv_type("kicked").await;
    assert_eq!(kicked["reason"], "room_moved", "{kicked}");
    wait_for("one room, on the node that claimed it", || {
        rooms(holder_node) == vec![(json!("split"), other_id.clone(), json!(1))]
    });
}
