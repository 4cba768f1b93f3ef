//! Media through the SFU with webrtc-rs client peers (no browser): fan-out, departures and room
//! cleanup, over the real signaling protocol on loopback.

mod support;

use roomcast_sfu::SfuConfig;
use support::client_peer::ClientPeer;
use support::{eventually, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_each_receive_audio_and_video_from_the_other_two() {
    let server = TestServer::start(SfuConfig::default()).await;
    let a = ClientPeer::join(&server, "trio", "A").await;
    let b = ClientPeer::join(&server, "trio", "B").await;
    let c = ClientPeer::join(&server, "trio", "C").await;
    let peers = [&a, &b, &c];

    for receiver in peers {
        for publisher in peers.iter().filter(|p| p.id != receiver.id) {
            eventually(
                &format!("{} to receive from {}", receiver.id, publisher.id),
                || async {
                    let got = receiver.received_from(&publisher.id);
                    got.audio >= 20 && got.video >= 20
                },
            )
            .await;
        }
        assert_eq!(
            receiver.received_from(&receiver.id),
            Default::default(),
            "nobody gets their own media back"
        );
    }

    for peer in peers {
        assert_eq!(peer.errors(), Vec::<serde_json::Value>::new());
    }
    let leaver = c.id.clone();
    assert!(sends_stream(&a.remote_sdp().await, &leaver));
    c.leave().await;
    for stayer in [&a, &b] {
        eventually("the leaver's tracks to be removed", || async {
            stayer.saw_leave_of(&leaver) && !sends_stream(&stayer.remote_sdp().await, &leaver)
        })
        .await;
    }
    let before = a.received_from(&leaver);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        a.received_from(&leaver),
        before,
        "no more media from the leaver"
    );

    let from_b = a.received_from(&b.id).video;
    eventually("media between the stayers to keep flowing", || async {
        a.received_from(&b.id).video > from_b + 10
    })
    .await;

    a.leave().await;
    b.close().await;
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_receives_the_tracks_published_before_it_came() {
    let server = TestServer::start(SfuConfig::default()).await;
    let early = ClientPeer::join(&server, "late", "Early").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let late = ClientPeer::join(&server, "late", "Late").await;
    eventually(
        "the late joiner to receive the early one's media",
        || async {
            let got = late.received_from(&early.id);
            got.audio >= 10 && got.video >= 10
        },
    )
    .await;
    eventually(
        "the early one to receive the late joiner's media",
        || async { early.received_from(&late.id).video >= 10 },
    )
    .await;
    early.close().await;
    late.close().await;
    server.wait_until_empty().await;
}

/// Whether an SDP still has a sending m-section for the given MediaStream id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_reports_a_video_packet_lost_gets_it_again_from_the_server() {
    let server = TestServer::start(SfuConfig::default()).await;
    let a = ClientPeer::join(&server, "nack", "A").await;
    let b = ClientPeer::join(&server, "nack", "B").await;
    eventually("B to receive A's video", || async {
        b.received_from(&a.id).video >= 20
    })
    .await;
    let seq = b.nack_video_of(&a.id).await;
    eventually("the server to resend the packet B asked for", || async {
        b.times_received(&a.id, seq) >= 2
    })
    .await;
    // The very same packet: its transport-wide number too, so SRTP seals the same header again
    // (an AES-GCM nonce, made of SSRC and sequence number, never covers two different headers).
    let arrivals = b.arrivals(&a.id, seq);
    assert!(arrivals.iter().all(|h| h == &arrivals[0]), "{arrivals:#?}");
    assert!(
        !arrivals[0].extensions.is_empty(),
        "the header carries the transport-wide number"
    );
    a.close().await;
    b.close().await;
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_negotiates_only_the_codecs_it_routes() {
    let server = TestServer::start(SfuConfig::default()).await;
    // Both clients offer webrtc-rs's twenty default codecs.
    let a = ClientPeer::join(&server, "codecs", "A").await;
    let b = ClientPeer::join(&server, "codecs", "B").await;
    eventually("B to receive A's video", || async {
        b.received_from(&a.id).video >= 5
    })
    .await;
    // B's remote description is the server's offer with A's tracks (or its answer after).
    let sdp = b.remote_sdp().await;
    let mut sections = 0;
    for section in sdp.split("\nm=").skip(1) {
        let codecs: std::collections::BTreeSet<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .filter_map(|l| l.split_once(' ')?.1.split('/').next())
            .collect();
        let allowed: &[&str] = if section.starts_with("audio") {
            &["opus"]
        } else if section.starts_with("video") {
            &["VP8", "VP9", "H264", "AV1", "rtx"]
        } else {
            continue;
        };
        sections += 1;
        assert!(
            !codecs.is_empty() && codecs.iter().all(|c| allowed.contains(c)),
            "{codecs:?} in\n{section}"
        );
    }
    assert!(sections >= 2, "{sdp}");
    a.close().await;
    b.close().await;
    server.wait_until_empty().await;
}

fn sends_stream(sdp: &str, stream: &str) -> bool {
    sdp.split("\nm=").skip(1).any(|section| {
        let sending = section.contains("a=sendonly") || section.contains("a=sendrecv");
        sending && section.contains(&format!("a=msid:{stream} "))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_media_connection_dies_is_removed_and_told_why() {
    let server = TestServer::start(SfuConfig {
        peer_timeout: std::time::Duration::from_secs(2),
        ..SfuConfig::default()
    })
    .await;
    let stayer = ClientPeer::join(&server, "fragile", "Stayer").await;
    let vanisher = ClientPeer::join(&server, "fragile", "Vanisher").await;
    eventually("media to flow", || async {
        stayer.received_from(&vanisher.id).video > 10
    })
    .await;
    let gone = vanisher.id.clone();
    let told = vanisher.kill_media().await;
    eventually("the others to hear the vanished one left", || async {
        stayer.saw_leave_of(&gone)
    })
    .await;
    let messages = told.await.expect("signaling stayed open");
    assert!(
        messages
            .iter()
            .any(|m| m["type"] == "error" && m["code"] == "peer_failed"),
        "{messages:?}"
    );
    assert_eq!(messages.last().unwrap()["type"], "left");
    assert_eq!(server.sfu.room("fragile").unwrap().participants.len(), 1);
    stayer.close().await;
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_new_ice_credentials_restarts_ice_and_keeps_every_subscription() {
    let server = TestServer::start(SfuConfig::default()).await;
    let a = ClientPeer::join(&server, "restart", "A").await;
    let b = ClientPeer::join(&server, "restart", "B").await;
    for (receiver, publisher) in [(&a, &b), (&b, &a)] {
        eventually("media both ways", || async {
            receiver.received_from(&publisher.id).video >= 20
        })
        .await;
    }
    let ufrag = |sdp: String| {
        let line = sdp.lines().find(|l| l.starts_with("a=ice-ufrag:"));
        line.map(str::to_owned)
    };
    let before = ufrag(a.remote_sdp().await);

    a.restart_ice().await;
    eventually("the server to answer with new credentials", || async {
        ufrag(a.remote_sdp().await) != before
    })
    .await;
    a.wait_connected().await;
    let (to_a, from_a) = (a.received_from(&b.id).video, b.received_from(&a.id).video);
    eventually("media both ways after the restart", || async {
        a.received_from(&b.id).video > to_a + 20 && b.received_from(&a.id).video > from_a + 20
    })
    .await;
    assert_eq!(a.errors(), Vec::<serde_json::Value>::new());
    assert!(
        !b.saw_leave_of(&a.id),
        "the same participant, not a new one"
    );
}
