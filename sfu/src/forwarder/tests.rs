//! The forwarder's specification.

use super::vp8::tests::payload as vp8_payload;
use super::*;

const CLOCK: u32 = 90_000;

/// A publisher's packets on three simulcast layers, numbered independently as Chromium does.
struct Publisher {
    start: Instant,
    seq: [u16; 3],
    ts: [u32; 3],
    picture_id: [u16; 3],
}

struct Sent {
    info: FrameInfo,
    seq: u16,
    ts: u32,
}

impl Publisher {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            seq: [100, 20_000, 65_530],
            ts: [1_000, 2_000_000_000, 4_000_000_000],
            picture_id: [10, 5_000, 32_760],
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// The next single-packet VP8 frame of `layer`.
    fn frame(&mut self, layer: usize, keyframe: bool) -> Sent {
        let l = layer;
        let bytes = vp8_payload(self.picture_id[l], 0, 0, true, keyframe);
        let sent = Sent {
            info: FrameInfo::read(PayloadFormat::Vp8, layer as u8, &bytes),
            seq: self.seq[l],
            ts: self.ts[l],
        };
        self.seq[l] = self.seq[l].wrapping_add(1);
        self.ts[l] = self.ts[l].wrapping_add(3000);
        self.picture_id[l] = (self.picture_id[l] + 1) % (1 << 15);
        sent
    }

    fn padding(&mut self, layer: usize) -> Sent {
        let sent = Sent {
            info: FrameInfo::read(PayloadFormat::Vp8, layer as u8, &[]),
            seq: self.seq[layer],
            ts: self.ts[layer],
        };
        self.seq[layer] = self.seq[layer].wrapping_add(1);
        sent
    }
}

fn offer(f: &mut Forwarder, now: Instant, p: &Sent) -> Verdict {
    f.on_packet(now, &p.info, p.seq, p.ts)
}

fn forwarded(v: Verdict) -> Rewrite {
    match v {
        Verdict::Forward(r) => r,
        Verdict::Drop(why) => panic!("dropped: {why:?}"),
    }
}

/// The picture id the subscriber sees, rewritten or not.
fn picture_id(p: &Sent, r: &Rewrite) -> u16 {
    r.vp8
        .and_then(|v| v.picture_id)
        .or(p.info.vp8.and_then(|d| d.picture_id))
        .unwrap()
        .value
}

#[test]
fn nothing_is_forwarded_before_the_target_layer_starts_a_keyframe() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 1000, Some(0));
    let delta = p.frame(0, false);
    assert_eq!(
        offer(&mut f, p.at(0), &delta),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    let key = p.frame(0, true);
    let r = forwarded(offer(&mut f, p.at(33), &key));
    assert_eq!(r.sequence_number, 1000);
    assert_eq!(f.current(), Some(0));
}

#[test]
fn other_layers_are_not_forwarded() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(1));
    let low = p.frame(0, true);
    assert_eq!(
        offer(&mut f, p.at(0), &low),
        Verdict::Drop(DropReason::NotForwarded)
    );
    assert_eq!(f.wanted_layers(), 0b010);
}

#[test]
fn a_switch_is_seamless_in_sequence_timestamp_and_picture_id() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 1000, Some(0));
    let mut out = Vec::new();
    for (i, key) in [true, false, false].into_iter().enumerate() {
        let s = p.frame(0, key);
        let r = forwarded(offer(&mut f, p.at(33 * i as u64), &s));
        out.push((r.sequence_number, r.timestamp, picture_id(&s, &r)));
    }
    f.set_target(Some(2));
    assert_eq!(
        f.wanted_layers(),
        0b101,
        "the current layer flows until the switch"
    );
    let high_delta = p.frame(2, false);
    assert_eq!(
        offer(&mut f, p.at(100), &high_delta),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    let low = p.frame(0, false);
    let r = forwarded(offer(&mut f, p.at(100), &low));
    out.push((r.sequence_number, r.timestamp, picture_id(&low, &r)));
    let high_key = p.frame(2, true);
    let r = forwarded(offer(&mut f, p.at(133), &high_key));
    out.push((r.sequence_number, r.timestamp, picture_id(&high_key, &r)));
    assert_eq!(f.current(), Some(2));
    let after = p.frame(0, false);
    assert_eq!(
        offer(&mut f, p.at(140), &after),
        Verdict::Drop(DropReason::NotForwarded)
    );
    let next = p.frame(2, false);
    let r = forwarded(offer(&mut f, p.at(166), &next));
    out.push((r.sequence_number, r.timestamp, picture_id(&next, &r)));

    let seqs: Vec<u16> = out.iter().map(|o| o.0).collect();
    assert_eq!(seqs, [1000, 1001, 1002, 1003, 1004, 1005]);
    let ids: Vec<u16> = out.iter().map(|o| o.2).collect();
    assert_eq!(ids, [10, 11, 12, 13, 14, 15]);
    // The high layer's keyframe comes 33 ms of wall clock after the last low-layer packet.
    assert_eq!(out[4].1.wrapping_sub(out[3].1), 33 * 90);
    assert_eq!(
        out[5].1.wrapping_sub(out[4].1),
        3000,
        "then the layer's own spacing"
    );
}

#[test]
fn switching_down_also_waits_for_a_keyframe() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(2));
    forwarded(offer(&mut f, p.at(0), &p.frame(2, true)));
    f.set_target(Some(0));
    forwarded(offer(&mut f, p.at(33), &p.frame(2, false)));
    assert_eq!(f.current(), Some(2));
    forwarded(offer(&mut f, p.at(40), &p.frame(0, true)));
    assert_eq!(f.current(), Some(0));
}

#[test]
fn a_lost_packet_stays_a_gap_the_subscriber_can_ask_for() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(0));
    forwarded(offer(&mut f, p.at(0), &p.frame(0, true)));
    let _lost = p.frame(0, false);
    let r = forwarded(offer(&mut f, p.at(66), &p.frame(0, false)));
    assert_eq!(r.sequence_number, 2);
}

#[test]
fn a_reordered_packet_is_forwarded_in_its_own_place() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(0));
    forwarded(offer(&mut f, p.at(0), &p.frame(0, true)));
    let late = p.frame(0, false);
    let early = p.frame(0, false);
    assert_eq!(
        forwarded(offer(&mut f, p.at(66), &early)).sequence_number,
        2
    );
    let r = forwarded(offer(&mut f, p.at(70), &late));
    assert_eq!(r.sequence_number, 1);
    assert_eq!(r.timestamp, late.ts, "its own timestamp, not the newest");
}

#[test]
fn publisher_padding_is_dropped_without_leaving_a_gap() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(0));
    // Chromium probes its uplink with padding-only packets before and between frames.
    let early_padding = p.padding(0);
    assert_eq!(
        offer(&mut f, p.at(0), &early_padding),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    assert_eq!(
        forwarded(offer(&mut f, p.at(10), &p.frame(0, true))).sequence_number,
        0
    );
    for _ in 0..5 {
        let pad = p.padding(0);
        assert_eq!(
            offer(&mut f, p.at(20), &pad),
            Verdict::Drop(DropReason::Padding)
        );
    }
    assert_eq!(
        forwarded(offer(&mut f, p.at(33), &p.frame(0, false))).sequence_number,
        1
    );
}

#[test]
fn sequence_numbers_and_picture_ids_wrap_around() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 65_534, Some(2));
    let mut seqs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..12 {
        let s = p.frame(2, i == 0);
        let r = forwarded(offer(&mut f, p.at(33 * i), &s));
        seqs.push(r.sequence_number);
        ids.push(picture_id(&s, &r));
    }
    assert_eq!(&seqs[..4], [65_534, 65_535, 0, 1]);
    assert_eq!(&ids[6..10], [32_766, 32_767, 0, 1]);
}

#[test]
fn a_pause_takes_effect_at_once_and_a_resume_waits_for_a_keyframe() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(1));
    forwarded(offer(&mut f, p.at(0), &p.frame(1, true)));
    f.set_target(None);
    assert_eq!(
        f.wanted_layers(),
        0,
        "a paused track costs the publication nothing"
    );
    assert_eq!(
        offer(&mut f, p.at(33), &p.frame(1, false)),
        Verdict::Drop(DropReason::NotForwarded)
    );
    assert_eq!(
        f.keyframe_request(p.at(34)),
        None,
        "nothing to ask while paused"
    );
    f.set_target(Some(1));
    assert_eq!(f.keyframe_request(p.at(2000)), Some(1));
    assert_eq!(
        offer(&mut f, p.at(2000), &p.frame(1, false)),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    let r = forwarded(offer(&mut f, p.at(2033), &p.frame(1, true)));
    assert_eq!(r.sequence_number, 1, "no gap for the paused stretch");
}

#[test]
fn keyframe_requests_go_to_the_target_layer_and_are_throttled() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(0));
    assert_eq!(f.keyframe_request(p.at(0)), Some(0));
    assert_eq!(f.keyframe_request(p.at(100)), None);
    assert_eq!(
        f.keyframe_request(p.at(500)),
        Some(0),
        "asked again if none came"
    );
    forwarded(offer(&mut f, p.at(600), &p.frame(0, true)));
    assert_eq!(
        f.keyframe_request(p.at(2000)),
        None,
        "none while the target flows"
    );
    f.set_target(Some(2));
    assert_eq!(
        f.keyframe_request(p.at(2001)),
        Some(2),
        "a new target asks at once"
    );
}

#[test]
fn audio_and_unknown_codecs_flow_from_their_first_packet() {
    let mut f = Forwarder::new(48_000, 77, Some(0));
    let info = FrameInfo::read(PayloadFormat::Opaque, 0, &[0xfc, 0x01]);
    let r = forwarded(f.on_packet(Instant::now(), &info, 5, 960));
    assert_eq!((r.sequence_number, r.timestamp, r.vp8), (77, 960, None));
}

#[test]
fn a_single_layer_vp8_stream_passes_its_payload_unchanged() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 0, Some(0));
    for i in 0..5 {
        let r = forwarded(offer(&mut f, p.at(33 * i), &p.frame(0, i == 0)));
        assert_eq!(r.vp8, None, "no copy of the payload when nothing changes");
    }
}

#[test]
fn layers_beyond_eight_are_ignored_not_a_panic() {
    let mut f = Forwarder::new(CLOCK, 0, Some(9));
    assert_eq!(f.wanted_layers(), 0);
    let info = FrameInfo::read(PayloadFormat::Opaque, 9, &[1]);
    forwarded(f.on_packet(Instant::now(), &info, 1, 1));
}

#[test]
fn a_restarted_forwarder_carries_another_publication_on_from_where_the_last_one_stopped() {
    let mut first = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 1000, Some(0));
    let mut last = None;
    for (i, key) in [true, false].into_iter().enumerate() {
        let s = first.frame(0, key);
        last = Some(forwarded(offer(&mut f, first.at(33 * i as u64), &s)));
    }
    let last = last.unwrap();

    // Another publisher's stream, numbered its own way, on the same transceiver a second later.
    let mut second = Publisher::new();
    second.seq = [40_000, 0, 0];
    second.ts = [123_456, 0, 0];
    second.picture_id = [7_000, 0, 0];
    let mut f = f.restart(Some(0));
    assert_eq!(f.current(), None);
    let delta = second.frame(0, false);
    assert_eq!(
        offer(&mut f, first.at(1033), &delta),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    assert_eq!(f.keyframe_request(first.at(1033)), Some(0));
    let key = second.frame(0, true);
    let r = forwarded(offer(&mut f, first.at(1033), &key));
    assert_eq!(r.sequence_number, last.sequence_number + 1);
    assert_eq!(r.timestamp.wrapping_sub(last.timestamp), 1000 * 90);
    assert_eq!(
        picture_id(&key, &r),
        12,
        "the picture id runs on from the first stream's 11"
    );
}

#[test]
fn after_a_stretch_not_forwarded_the_stream_restarts_at_a_keyframe_numbered_on() {
    let mut p = Publisher::new();
    let mut f = Forwarder::new(CLOCK, 500, Some(0));
    let first = forwarded(offer(&mut f, p.at(0), &p.frame(0, true)));
    // The publisher was muted: the server forwarded nothing of these.
    for _ in 0..30 {
        p.frame(0, false);
    }
    let mut back = p.frame(0, false);
    back.info.resync = true;
    assert_eq!(
        offer(&mut f, p.at(1000), &back),
        Verdict::Drop(DropReason::AwaitingKeyframe)
    );
    assert_eq!(f.keyframe_request(p.at(1000)), Some(0));
    let key = p.frame(0, true);
    let r = forwarded(offer(&mut f, p.at(1100), &key));
    assert_eq!(
        r.sequence_number,
        first.sequence_number + 1,
        "no gap to NACK"
    );
    assert_eq!(r.timestamp.wrapping_sub(first.timestamp), 1100 * 90);
}
