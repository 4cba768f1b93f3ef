//! A client's SDP and ICE candidates as the server's participant handles them: join a room, offer
//! the fuzzed SDP, trickle the fuzzed candidates (and any further offers), then leave. The SFU
//! must answer or refuse each signal and always let the participant leave; it must never panic or
//! hang.
//!
//! Input: UTF-8 text split at NUL bytes. The first piece is the client's offer; each later piece
//! is another offer if it starts with `v=`, else an ICE candidate string (mid `0`, index 0).
//!
//! Every IP address literal in the input that is not a loopback address is rewritten to loopback
//! before the server sees it, so ICE connectivity checks towards fuzzed candidates never leave the
//! machine (CI also runs this target in a network namespace that has only `lo`).

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use roomcast_sfu::{IceCandidate, ServerEvent, Sfu, SfuConfig, Signal};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Far longer than any signal takes; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

struct Harness {
    runtime: Runtime,
    sfu: Sfu,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let sfu = runtime.block_on(async {
            Sfu::new(SfuConfig {
                // The server's own candidates stay on loopback too.
                media_ips: vec![Ipv4Addr::LOCALHOST.into()],
                peer_timeout: Duration::from_secs(2),
                ..SfuConfig::default()
            })
            .expect("sfu")
        });
        Harness { runtime, sfu }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut pieces = text.split('\0').map(loopback_only);
    let offer = pieces.next().unwrap_or_default();
    let signals: Vec<Signal> = std::iter::once(Signal::offer(offer))
        .chain(pieces.map(|piece| {
            if piece.starts_with("v=") {
                Signal::offer(piece)
            } else {
                Signal::Candidate(Some(IceCandidate {
                    candidate: piece,
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                }))
            }
        }))
        .collect();
    let harness = harness();
    harness.runtime.block_on(async {
        let (events_tx, mut events) = mpsc::channel(256);
        let joined = harness
            .sfu
            .join("fuzz", Some("fuzzer"), events_tx)
            .await
            .expect("an empty room admits a participant");
        let handle = joined.handle;
        // Take the participant's events while handing it signals: it answers every signal and
        // waits for room in its bounded event queue. A full signal queue means wait a moment.
        let send = async move {
            for signal in signals {
                loop {
                    match handle.signal(signal.clone()) {
                        Ok(()) => break,
                        Err(roomcast_sfu::SignalRefused::Busy) => {
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await
                        }
                        // The participant left on its own (its connection failed).
                        Err(roomcast_sfu::SignalRefused::Gone) => return,
                    }
                }
            }
            // Dropping the handle leaves; every signal before it is handled first.
        };
        let drain = async {
            while let Some(event) = events.recv().await {
                if matches!(event, ServerEvent::Left(_)) {
                    return true;
                }
            }
            false
        };
        let left = tokio::time::timeout(PATIENCE, async { tokio::join!(send, drain).1 }).await;
        assert_eq!(left, Ok(true), "the participant never left");
    });
});

/// Rewrites every whitespace-separated token that is a non-loopback IP address (the way webrtc-rs
/// splits and parses candidate and SDP fields) to the loopback address of its family.
fn loopback_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() {
            if let Some(start) = token_start.take() {
                out.push_str(loopback_token(&text[start..i]));
            }
            if i < text.len() {
                out.push(c);
            }
        } else if token_start.is_none() {
            token_start = Some(i);
        }
    }
    out
}

fn loopback_token(token: &str) -> &str {
    match token.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => token,
        Ok(IpAddr::V4(_)) => "127.0.0.1",
        Ok(IpAddr::V6(_)) => "::1",
        Err(_) => token,
    }
}
