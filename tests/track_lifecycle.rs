//! A track's life in a room, with webrtc-rs client peers: a muted kind is forwarded to no one, a
//! track its publisher removes is unpublished for everyone, and the m-sections of tracks that
//! ended are reused, so a subscriber's SDP stays bounded by what it receives at once however
//! long the room lives.

mod support;

use std::time::Duration;

use roomcast_sfu::SfuConfig;
use serde_json::{json, Value};
use support::client_peer::ClientPeer;
use support::{eventually, TestServer};

/// Media sections of an SDP.
fn sections(sdp: &str) -> Vec<&str> {
    sdp.split("\nm=").skip(1).collect()
}

/// Kinds of the media the server sends in `sdp` from the participant `publisher`.
fn sent_kinds(sdp: &str, publisher: &str) -> Vec<String> {
    let mut kinds: Vec<String> = sections(sdp)
        .into_iter()
        .filter(|s| s.contains("a=sendonly") || s.contains("a=sendrecv"))
        .filter(|s| s.contains(&format!("a=msid:{publisher} ")))
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// Kinds of the tracks the server lists for `who` in `room`, published or forwarded from
/// `from`.
fn listed_kinds(server: &TestServer, room: &str, who: &str, from: Option<&str>) -> Vec<String> {
    let Some(report) = server.sfu.room(room) else {
        return Vec::new();
    };
    let Some(p) = report.participants.iter().find(|p| p.name.as_str() == who) else {
        return Vec::new();
    };
    let tracks = match from {
        None => &p.published,
        Some(_) => &p.forwarded,
    };
    let mut kinds: Vec<String> = tracks
        .iter()
        .filter(|t| from.is_none_or(|f| t.publisher.as_str() == f))
        .map(|t| t.kind.to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// The last `participant_updated` about `who` that `peer` received.
fn last_update(peer: &ClientPeer, who: &str) -> Option<Value> {
    peer.messages_of("participant_updated")
        .into_iter()
        .rev()
        .map(|m| m["participant"].clone())
        .find(|p| p["id"] == who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_kind_reaches_no_subscriber_and_everyone_is_told() {
    let server = TestServer::start(SfuConfig::default()).await;
    let ada = ClientPeer::join(&server, "mute", "Ada").await;
    let bob = ClientPeer::join(&server, "mute", "Bob").await;
    let cy = ClientPeer::join(&server, "mute", "Cy").await;
    for peer in [&bob, &cy] {
        eventually("Ada's audio and video to arrive", || async {
            let got = peer.received_from(&ada.id);
            got.audio >= 10 && got.video >= 10
        })
        .await;
    }
    eventually(
        "everyone to know Ada publishes a microphone and a camera",
        || async {
            [&ada, &bob, &cy].iter().all(|p| {
                last_update(p, &ada.id)
                    .is_some_and(|a| a["publishes"] == json!(["microphone", "camera"]))
            })
        },
    )
    .await;

    ada.send(json!({"type": "mute", "kind": "audio", "muted": true}));
    eventually(
        "everyone, Ada included, to be told Ada's audio is muted",
        || async {
            [&ada, &bob, &cy]
                .iter()
                .all(|p| last_update(p, &ada.id).is_some_and(|a| a["audio_muted"] == true))
        },
    )
    .await;
    // What was in flight when the server took the mute has arrived by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<_> = [&bob, &cy]
        .iter()
        .map(|p| p.received_from(&ada.id))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (peer, before) in [&bob, &cy].iter().zip(before) {
        let after = peer.received_from(&ada.id);
        assert_eq!(after.audio, before.audio, "no audio packet in 1 s of mute");
        assert!(after.video >= before.video + 20, "video goes on: {after:?}");
    }

    ada.send(json!({"type": "mute", "kind": "audio", "muted": false}));
    ada.send(json!({"type": "mute", "kind": "video", "muted": true}));
    eventually(
        "Bob to be told Ada's video is muted and her audio is not",
        || async {
            last_update(&bob, &ada.id)
                .is_some_and(|a| a["audio_muted"] == false && a["video_muted"] == true)
        },
    )
    .await;
    let audio = bob.received_from(&ada.id).audio;
    eventually("Ada's audio to reach Bob again", || async {
        bob.received_from(&ada.id).audio >= audio + 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let video = bob.received_from(&ada.id).video;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bob.received_from(&ada.id).video,
        video,
        "no video in 1 s of mute"
    );

    let dan = ClientPeer::join(&server, "mute", "Dan").await;
    eventually("Dan, who came later, to receive Ada's audio", || async {
        dan.received_from(&ada.id).audio >= 10
    })
    .await;
    assert_eq!(
        dan.received_from(&ada.id).video,
        0,
        "a muted camera, even for late joiners"
    );
    let joined = dan.messages_of("joined");
    let listed = joined[0]["participants"].as_array().unwrap();
    let ada_seen = listed.iter().find(|p| p["id"] == ada.id.as_str()).unwrap();
    assert_eq!(ada_seen["video_muted"], true, "joined lists who is muted");

    for peer in [ada, bob, cy, dan] {
        peer.close().await;
    }
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_its_publisher_removes_is_unpublished_for_everyone_and_never_given_to_later_joiners(
) {
    let server = TestServer::start(SfuConfig::default()).await;
    let ada = ClientPeer::join(&server, "stop", "Ada").await;
    let bob = ClientPeer::join(&server, "stop", "Bob").await;
    eventually("Bob to receive Ada's audio and video", || async {
        let got = bob.received_from(&ada.id);
        got.audio >= 10 && got.video >= 10
    })
    .await;

    ada.stop_publishing("video").await;
    eventually(
        "the server to list only Ada's audio as published",
        || async { listed_kinds(&server, "stop", "Ada", None) == ["audio"] },
    )
    .await;
    eventually("Bob to be forwarded only Ada's audio", || async {
        listed_kinds(&server, "stop", "Bob", Some(&ada.id)) == ["audio"]
    })
    .await;
    eventually(
        "the server's offer to Bob to stop sending Ada's video",
        || async { sent_kinds(&bob.remote_sdp().await, &ada.id) == ["audio"] },
    )
    .await;
    let audio = bob.received_from(&ada.id).audio;
    eventually("Bob to keep receiving Ada's audio", || async {
        bob.received_from(&ada.id).audio >= audio + 10
    })
    .await;

    let cy = ClientPeer::join(&server, "stop", "Cy").await;
    eventually("Cy, who came later, to receive Ada's audio", || async {
        cy.received_from(&ada.id).audio >= 10
    })
    .await;
    assert_eq!(cy.received_from(&ada.id).video, 0);
    assert_eq!(
        listed_kinds(&server, "stop", "Cy", Some(&ada.id)),
        ["audio"]
    );
    assert_eq!(sent_kinds(&cy.remote_sdp().await, &ada.id), ["audio"]);

    for peer in [ada, bob, cy] {
        peer.close().await;
    }
    server.wait_until_empty().await;
}

/// The bound: a subscriber's SDP has one m-section per track it publishes, plus one per track it
/// receives at once, plus those of tracks that ended while the renegotiation announcing it was
/// still in flight (reused from the next one on). Here: 2 published, 2 received, at most 2 in
/// flight.
const MOST_SECTIONS: usize = 2 + 2 + 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_joins_and_leaves_keep_the_sdp_of_who_stays_bounded_by_the_live_tracks() {
    let server = TestServer::start(SfuConfig::default()).await;
    let stayer = ClientPeer::join(&server, "churn", "Stayer").await;
    let (mut most_sections, mut most_bytes) = (0, 0);
    let (mut first_sections, mut first_bytes) = (1, 0);
    // Each cycle reuses the sections the last one freed: forty show the bound holds as well as a
    // hundred did (86 s of the suite's time).
    let cycles = 40;
    for cycle in 0..cycles {
        let guest = ClientPeer::join(&server, "churn", &format!("Guest {cycle}")).await;
        let id = guest.id.clone();
        eventually(
            "the stayer to receive the guest's audio and video",
            || async {
                let got = stayer.received_from(&id);
                got.audio > 0 && got.video > 0
            },
        )
        .await;
        let sdp = stayer.remote_sdp().await;
        most_sections = most_sections.max(sections(&sdp).len());
        most_bytes = most_bytes.max(sdp.len());
        if cycle == 0 {
            (first_sections, first_bytes) = (sections(&sdp).len(), sdp.len());
        }
        assert!(
            sections(&sdp).len() <= MOST_SECTIONS,
            "cycle {cycle}: {} m-sections:\n{sdp}",
            sections(&sdp).len()
        );
        guest.close().await;
        // Not by `a=msid`: a reused m-section keeps naming the first track it carried.
        eventually(
            "an offer telling the stayer the guest's tracks are gone",
            || async {
                let offers = stayer.messages_of("offer");
                let tracks = offers.last().map(|o| o["tracks"].clone());
                tracks.is_some_and(|t| {
                    t.as_array()
                        .is_some_and(|t| t.iter().all(|t| t["participant"] != id.as_str()))
                })
            },
        )
        .await;
    }
    eprintln!(
        "{cycles} cycles: at most {most_sections} m-sections, at most {most_bytes} SDP bytes \
         (first cycle: {first_bytes})"
    );
    // Beyond the m-sections, a cycle's SDP differs only in ids and versions: its size is bounded
    // by the section bound at the first cycle's bytes per section.
    let per_section = first_bytes / first_sections;
    assert!(
        most_bytes <= per_section * MOST_SECTIONS * 11 / 10,
        "{most_bytes} SDP bytes at most, {per_section} per m-section at first"
    );
    let report = server.sfu.room("churn").expect("the stayer's room");
    assert!(
        report.participants[0].forwarded.is_empty(),
        "nothing is forwarded once every guest is gone"
    );
    stayer.close().await;
    server.wait_until_empty().await;
}
