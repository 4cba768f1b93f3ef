//! What a subscriber's forwarded simulcast video delivered, read from each packet's
//! [`VideoProbe`]: which layer arrived when, keyframe arrivals, complete frames, and frames a
//! decoder could have shown.
//!
//! - A frame is **complete** when every one of its packets arrived (the probe says how many a
//!   frame has, so a lost last packet is seen too).
//! - A frame is **decodable** when it is complete and so is every frame back to the keyframe it
//!   depends on (one decoder for the track, whatever layer the server forwards: a switch lands
//!   on a keyframe). It is a proxy for a browser's `framesDecoded`, not a decoder.
//! - **Loss** is the gaps in one layer's packet counter between two packets of that layer, except
//!   at a keyframe's first packet: the server resumes or switches a layer only there, so a gap
//!   before it is a skip the forwarder chose, not loss.

use crate::media::VideoProbe;

const LAYERS: usize = crate::media::LAYERS.len();

#[derive(Clone, Debug, Default)]
pub struct VideoLog {
    pub packets: u64,
    pub lost: u64,
    pub per_layer: [u64; LAYERS],
    pub frames_seen: u64,
    pub complete_frames: u64,
    pub decodable_frames: u64,
    /// The size each layer's keyframes announced (VP8 keyframe header), as received.
    pub sizes: [Option<(u16, u16)>; LAYERS],
    /// The layer of the last packet.
    pub layer: Option<u8>,
    /// (arrival µs, new layer) at each change of layer, the first packet included.
    pub changes: Vec<(u64, u8)>,
    /// (arrival µs, layer, answered a keyframe request) of every keyframe's first packet.
    pub keyframes: Vec<(u64, u8, bool)>,
    pub last_arrival: u64,
    last_counter: [Option<u32>; LAYERS],
    /// The frame being received: (layer, frame), packets so far, whether complete.
    frame: Option<(u8, u32)>,
    frame_received: u32,
    frame_done: bool,
    /// The last decodable frame, while the chain since its keyframe is unbroken.
    chain: Option<(u8, u32)>,
}

impl VideoLog {
    pub fn record(&mut self, p: VideoProbe, size: Option<(u16, u16)>, now: u64) {
        let layer = usize::from(p.layer).min(LAYERS - 1);
        self.packets += 1;
        self.per_layer[layer] += 1;
        self.last_arrival = now;
        if self.layer != Some(p.layer) {
            self.changes.push((now, p.layer));
            self.layer = Some(p.layer);
        }
        if p.keyframe_start() {
            self.keyframes.push((now, p.layer, p.requested()));
        }
        if let Some(s) = size {
            self.sizes[layer] = Some(s);
        }
        if let Some(last) = self.last_counter[layer] {
            let gap = p.counter.wrapping_sub(last);
            if gap > 1 && gap < u32::MAX / 2 && !p.keyframe_start() {
                self.lost += u64::from(gap - 1);
            }
        }
        self.last_counter[layer] = Some(p.counter);
        // Other layers' counters are stale once this one flows: a later return to them is a
        // switch, not loss.
        for (i, c) in self.last_counter.iter_mut().enumerate() {
            if i != layer {
                *c = None;
            }
        }

        let key = (p.layer, p.frame);
        if self.frame != Some(key) {
            self.frame = Some(key);
            self.frame_received = 0;
            self.frame_done = false;
            self.frames_seen += 1;
        }
        self.frame_received += 1;
        if !self.frame_done && self.frame_received >= u32::from(p.packets.max(1)) {
            self.frame_done = true;
            self.complete_frames += 1;
            let follows = self.chain == Some((p.layer, p.frame.wrapping_sub(1)));
            if p.keyframe() || follows {
                self.decodable_frames += 1;
                self.chain = Some(key);
            } else {
                self.chain = None;
            }
        }
    }

    /// The first keyframe of `layer` (any layer if `None`) whose first packet arrived at or
    /// after `since`: (arrival µs, answered a keyframe request).
    pub fn keyframe_since(&self, since: u64, layer: Option<u8>) -> Option<(u64, bool)> {
        self.keyframes
            .iter()
            .rev()
            .take_while(|(t, _, _)| *t >= since)
            .filter(|(_, l, _)| layer.is_none_or(|want| *l == want))
            .last()
            .map(|(t, _, requested)| (*t, *requested))
    }

    /// Counters of `self` minus those of an `earlier` snapshot of the same log.
    pub fn since(&self, earlier: &VideoLog) -> Counters {
        let mut per_layer = [0; LAYERS];
        for (i, v) in per_layer.iter_mut().enumerate() {
            *v = self.per_layer[i] - earlier.per_layer[i];
        }
        Counters {
            packets: self.packets - earlier.packets,
            lost: self.lost - earlier.lost,
            per_layer,
            complete_frames: self.complete_frames - earlier.complete_frames,
            decodable_frames: self.decodable_frames - earlier.decodable_frames,
        }
    }
}

/// What a log counted between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub lost: u64,
    pub per_layer: [u64; LAYERS],
    pub complete_frames: u64,
    pub decodable_frames: u64,
}

impl Counters {
    /// The layer most packets came from.
    pub fn main_layer(&self) -> Option<u8> {
        (self.packets > 0)
            .then(|| (0..LAYERS).max_by_key(|&i| self.per_layer[i]).unwrap_or(0) as u8)
    }

    pub fn loss(&self) -> f64 {
        let expected = self.packets + self.lost;
        if expected == 0 {
            return 0.0;
        }
        self.lost as f64 / expected as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(
        layer: u8,
        frame: u32,
        index: u8,
        packets: u8,
        counter: u32,
        key: bool,
    ) -> VideoProbe {
        VideoProbe {
            counter,
            sent_micros: 0,
            layer,
            flags: if key { VideoProbe::KEYFRAME } else { 0 },
            frame,
            index,
            packets,
        }
    }

    #[test]
    fn frames_are_complete_and_decodable_only_with_all_their_packets() {
        let mut log = VideoLog::default();
        // Keyframe 0 (2 packets), delta 1 (1 packet), delta 2 loses its second packet, delta 3.
        log.record(packet(2, 0, 0, 2, 0, true), Some((1280, 720)), 10);
        log.record(packet(2, 0, 1, 2, 1, true), None, 11);
        log.record(packet(2, 1, 0, 1, 2, false), None, 20);
        log.record(packet(2, 2, 0, 2, 3, false), None, 30);
        log.record(packet(2, 3, 0, 1, 5, false), None, 40);
        assert_eq!(log.frames_seen, 4);
        assert_eq!(log.complete_frames, 3);
        assert_eq!(
            log.decodable_frames, 2,
            "frame 3 follows an incomplete frame"
        );
        assert_eq!(log.lost, 1);
        assert_eq!(log.sizes[2], Some((1280, 720)));
        // A switch to layer 0 on its keyframe: a new chain, no loss counted for the skip.
        log.record(packet(0, 90, 0, 1, 500, true), Some((320, 180)), 50);
        log.record(packet(0, 91, 0, 1, 501, false), None, 60);
        assert_eq!(log.decodable_frames, 4);
        assert_eq!(log.lost, 1);
        assert_eq!(log.changes, vec![(10, 2), (50, 0)]);
        assert_eq!(log.keyframe_since(12, Some(0)), Some((50, false)));
        assert_eq!(log.keyframe_since(12, Some(2)), None);
        assert_eq!(log.keyframe_since(0, None), Some((10, false)));
    }

    #[test]
    fn counters_between_snapshots() {
        let mut log = VideoLog::default();
        log.record(packet(1, 0, 0, 1, 0, true), None, 1);
        let before = log.clone();
        log.record(packet(1, 1, 0, 1, 1, false), None, 2);
        log.record(packet(1, 2, 0, 1, 3, false), None, 3);
        let c = log.since(&before);
        assert_eq!(c.packets, 2);
        assert_eq!(c.lost, 1);
        assert_eq!(c.main_layer(), Some(1));
        assert!((c.loss() - 1.0 / 3.0).abs() < 1e-9);
    }
}
