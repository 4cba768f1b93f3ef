//! What the allocator is told about each video track one subscriber receives.
//!
//! Layer bitrates are measured by the SFU on the publisher's side; tile sizes
//! and visibility are reported by the subscriber's client. Nothing here is
//! trusted to be well-formed, so every helper tolerates empty or odd input.

/// Identifies one subscribed track within the subscriber's session.
pub type TrackKey = u64;

/// How much a track matters to this subscriber; higher is served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Normal,
    Speaker,
    Screen,
}

/// One simulcast layer as currently measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// 0 means the publisher is not sending this layer now, so it cannot be forwarded.
    pub bitrate_bps: u64,
    pub width: u32,
    pub height: u32,
}

/// One video track as this subscriber wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoDemand {
    pub track: TrackKey,
    pub priority: Priority,
    /// How large the subscriber shows it, in CSS pixels × devicePixelRatio;
    /// `None` = unknown (treated as wanting the top layer); a zero side = hidden.
    pub tile: Option<(u32, u32)>,
    pub visible: bool,
    /// The publication's layers, lowest first (1 to 3 of them).
    pub layers: Vec<Layer>,
}

impl VideoDemand {
    pub(crate) fn is_hidden(&self) -> bool {
        !self.visible || self.tile.is_some_and(|(w, h)| w == 0 || h == 0)
    }

    /// Serving rank, highest first: priority, then tile area. An unknown tile
    /// wants the top layer, so it ranks as the largest.
    pub(crate) fn rank(&self) -> (Priority, u64) {
        let area = self
            .tile
            .map_or(u64::MAX, |(w, h)| u64::from(w) * u64::from(h));
        (self.priority, area)
    }

    pub(crate) fn bitrate(&self, layer: u8) -> u64 {
        self.layers
            .get(usize::from(layer))
            .map_or(0, |l| l.bitrate_bps)
    }

    /// Layers that can be forwarded now. Indices beyond `u8` are ignored
    /// rather than wrapped, so a malformed list cannot alias a real layer.
    fn usable(&self) -> impl DoubleEndedIterator<Item = (u8, &Layer)> {
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((u8::try_from(i).ok()?, l)))
            .filter(|(_, l)| l.bitrate_bps > 0)
    }

    pub(crate) fn lowest_usable(&self) -> Option<u8> {
        self.usable().next().map(|(i, _)| i)
    }

    pub(crate) fn next_usable_above(&self, layer: u8) -> Option<u8> {
        self.usable().map(|(i, _)| i).find(|&i| i > layer)
    }

    pub(crate) fn usable_at_or_below(&self, layer: u8) -> Option<u8> {
        self.usable().rev().map(|(i, _)| i).find(|&i| i <= layer)
    }

    /// The layer worth sending for the tile: the smallest usable one that
    /// covers it, unless that one exceeds the tile by more than `overshoot` in
    /// both dimensions and a smaller one exists. Mild upscaling of the smaller
    /// layer looks almost the same and costs about half the bits.
    pub(crate) fn wanted_layer(&self, overshoot: f64) -> Option<u8> {
        let top = self.usable().next_back()?.0;
        let Some((w, h)) = self.tile else {
            return Some(top);
        };
        let covering = self.usable().find(|(_, l)| l.width >= w && l.height >= h);
        let Some((i, layer)) = covering else {
            return Some(top);
        };
        let too_big = f64::from(layer.width) > f64::from(w) * overshoot
            && f64::from(layer.height) > f64::from(h) * overshoot;
        let smaller = i.checked_sub(1).and_then(|j| self.usable_at_or_below(j));
        Some(smaller.filter(|_| too_big).unwrap_or(i))
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Tracks for the tests, with layers 320x180, 640x360 and 1280x720.

    use super::*;

    pub(crate) const SMALL: Option<(u32, u32)> = Some((320, 180));

    pub(crate) fn layer(bitrate_bps: u64, width: u32, height: u32) -> Layer {
        Layer {
            bitrate_bps,
            width,
            height,
        }
    }

    fn video(
        track: TrackKey,
        priority: Priority,
        tile: Option<(u32, u32)>,
        bps: [u64; 3],
    ) -> VideoDemand {
        let sizes = [(320, 180), (640, 360), (1280, 720)];
        let layers = bps
            .iter()
            .zip(sizes)
            .map(|(&b, (w, h))| layer(b, w, h))
            .collect();
        VideoDemand {
            track,
            priority,
            tile,
            visible: true,
            layers,
        }
    }

    pub(crate) fn camera(track: TrackKey, tile: Option<(u32, u32)>) -> VideoDemand {
        video(track, Priority::Normal, tile, [150_000, 500_000, 1_200_000])
    }

    pub(crate) fn screen(track: TrackKey) -> VideoDemand {
        let tile = Some((1280, 720));
        video(track, Priority::Screen, tile, [200_000, 600_000, 1_500_000])
    }

    impl VideoDemand {
        pub(crate) fn hidden(mut self) -> Self {
            self.visible = false;
            self
        }

        pub(crate) fn speaking(mut self) -> Self {
            self.priority = Priority::Speaker;
            self
        }

        pub(crate) fn with_layers(mut self, layers: Vec<Layer>) -> Self {
            self.layers = layers;
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::camera;

    fn wanted(tile: (u32, u32)) -> Option<u8> {
        camera(1, Some(tile)).wanted_layer(1.5)
    }

    #[test]
    fn the_wanted_layer_is_the_smallest_that_covers_the_tile() {
        assert_eq!(wanted((320, 180)), Some(0));
        assert_eq!(wanted((600, 340)), Some(1));
        assert_eq!(wanted((1280, 720)), Some(2));
        assert_eq!(wanted((3840, 2160)), Some(2), "nothing covers it: the top");
        assert_eq!(camera(1, None).wanted_layer(1.5), Some(2), "unknown: top");
    }

    #[test]
    fn a_layer_much_larger_than_the_tile_is_not_wanted_unless_it_is_the_lowest() {
        // 640x360 exceeds 1.5 × 400x225 in both sides; 320x180 upscaled 1.25× will do.
        assert_eq!(wanted((400, 225)), Some(0));
        assert_eq!(wanted((480, 270)), Some(1), "640x360 is 1.33× of it: fine");
        assert_eq!(wanted((40, 20)), Some(0), "the lowest is always allowed");
    }

    #[test]
    fn layers_with_zero_bitrate_are_skipped() {
        let stopped_middle = |tile| {
            let mut d = camera(1, Some(tile));
            d.layers[1].bitrate_bps = 0;
            d
        };
        assert_eq!(stopped_middle((1000, 560)).wanted_layer(1.5), Some(2));
        // Would want the middle; the top is far too big for it, so the lowest it is.
        assert_eq!(stopped_middle((600, 340)).wanted_layer(1.5), Some(0));
        assert_eq!(stopped_middle((1, 1)).next_usable_above(0), Some(2));
    }
}
