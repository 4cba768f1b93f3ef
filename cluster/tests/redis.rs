//! Registry and room ownership against a real Redis (Debian's `redis-server`, started per test on
//! a free loopback port with no persistence).

#[allow(dead_code)] // the fixture serves the binary's tests too
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use redis_server::RedisServer;
use roomcast_cluster::{
    Claim, Delivery, Mailbox, NodeId, NodeLoad, NodeRecord, NodeState, Redis, Registry, RoomClaims,
};

async fn connect(server: &RedisServer) -> Redis {
    Redis::connect(&server.url).await.expect("connect to redis")
}

const SHORT: Duration = Duration::from_millis(400);

fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

async fn claims(server: &RedisServer, id: &str) -> RoomClaims {
    RoomClaims::new(connect(server).await, node(id)).with_lease(SHORT)
}

#[tokio::test]
async fn the_first_node_to_claim_a_room_owns_it_and_the_others_are_told_who() {
    let server = RedisServer::start();
    let (a, b) = (claims(&server, "a").await, claims(&server, "b").await);
    assert_eq!(a.claim("standup").await.unwrap(), Claim::Mine);
    assert_eq!(
        b.claim("standup").await.unwrap(),
        Claim::Elsewhere(node("a"))
    );
    assert_eq!(
        a.claim("standup").await.unwrap(),
        Claim::Mine,
        "claiming again is harmless"
    );
    assert_eq!(b.owner("standup").await.unwrap(), Some(node("a")));
    assert_eq!(b.claim("retro").await.unwrap(), Claim::Mine);
    assert_eq!(
        a.all().await.unwrap(),
        vec![("retro".into(), node("b")), ("standup".into(), node("a"))]
    );
}

#[tokio::test]
async fn a_claim_lapses_unless_its_owner_refreshes_it() {
    let server = RedisServer::start();
    let (a, b) = (claims(&server, "a").await, claims(&server, "b").await);
    a.claim("kept").await.unwrap();
    a.claim("dropped").await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(SHORT / 2).await;
        assert_eq!(a.refresh().await.unwrap(), Vec::<String>::new());
    }
    assert_eq!(
        b.owner("kept").await.unwrap(),
        Some(node("a")),
        "refreshed past its lease"
    );

    // A node that stops refreshing (killed) loses its rooms within the lease.
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(b.claim("kept").await.unwrap(), Claim::Mine);
    assert_eq!(
        a.refresh().await.unwrap(),
        vec!["dropped".to_owned(), "kept".to_owned()],
        "the old owner learns both are lost"
    );
    assert!(a.held().is_empty());
    assert_eq!(
        b.owner("kept").await.unwrap(),
        Some(node("b")),
        "and cannot take one back"
    );
}

#[tokio::test]
async fn only_the_owner_can_release_a_room() {
    let server = RedisServer::start();
    let (a, b) = (claims(&server, "a").await, claims(&server, "b").await);
    a.claim("room").await.unwrap();
    b.release("room").await.unwrap();
    assert_eq!(b.owner("room").await.unwrap(), Some(node("a")));
    a.release("room").await.unwrap();
    assert_eq!(b.owner("room").await.unwrap(), None);
    assert_eq!(b.claim("room").await.unwrap(), Claim::Mine);
}

#[tokio::test]
async fn the_registry_lists_the_nodes_whose_record_is_alive() {
    let server = RedisServer::start();
    let registry = Registry::new(connect(&server).await).with_lease(SHORT);
    let record = |id: &str, participants| NodeRecord {
        id: node(id),
        url: format!("http://{id}.example:8080"),
        state: NodeState::Serving,
        load: NodeLoad {
            rooms: 1,
            participants,
            cpu: 0.5,
        },
        updated_ms: 1,
    };
    registry.publish(&record("b", 7)).await.unwrap();
    registry.publish(&record("a", 3)).await.unwrap();
    let nodes = registry.nodes().await.unwrap();
    assert_eq!(nodes, vec![record("a", 3), record("b", 7)]);
    assert_eq!(roomcast_cluster::place(&nodes).unwrap().id, node("a"));

    registry.remove(&node("a")).await.unwrap();
    assert_eq!(registry.nodes().await.unwrap(), vec![record("b", 7)]);
    tokio::time::sleep(SHORT * 2).await;
    assert!(
        registry.nodes().await.unwrap().is_empty(),
        "a node that stops beating lapses"
    );
}

#[tokio::test]
async fn without_redis_every_call_says_unavailable_and_nothing_panics() {
    let server = RedisServer::start();
    let a = claims(&server, "a").await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = a.claim("room").await.unwrap_err();
    assert!(
        matches!(error, roomcast_cluster::ClusterError::Unavailable(_)),
        "{error}"
    );
}

async fn next(mailbox: &mut Mailbox) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), mailbox.recv())
        .await
        .expect("a delivery within 10 s")
        .expect("the mailbox open")
}

#[tokio::test]
async fn a_letter_posted_to_a_node_reaches_that_node_alone_in_order() {
    let server = RedisServer::start();
    let (mut a, post_a) = Mailbox::open(&server.url, &node("a")).await.unwrap();
    let (mut b, _post_b) = Mailbox::open(&server.url, &node("b")).await.unwrap();
    for i in 0..100 {
        assert!(post_a
            .post(&node("b"), &format!("letter {i}"))
            .await
            .unwrap());
    }
    for i in 0..100 {
        assert_eq!(next(&mut b).await, Delivery::Letter(format!("letter {i}")));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), a.recv())
            .await
            .is_err(),
        "nothing for a"
    );
    assert!(
        !post_a.post(&node("nobody"), "lost").await.unwrap(),
        "a letter to a node that is not listening is known unread"
    );
}

#[tokio::test]
async fn a_mailbox_says_when_redis_goes_and_works_again_when_it_is_back() {
    let server = RedisServer::start();
    let port = server.port;
    let (mut a, post) = Mailbox::open(&server.url, &node("a")).await.unwrap();
    server.stop();
    assert_eq!(next(&mut a).await, Delivery::Down);
    assert!(post.post(&node("a"), "while down").await.is_err());
    let _server = RedisServer::start_on(port);
    assert_eq!(next(&mut a).await, Delivery::Up);
    assert!(post.post(&node("a"), "back").await.unwrap());
    assert_eq!(next(&mut a).await, Delivery::Letter("back".into()));
}
