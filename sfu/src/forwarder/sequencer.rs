//! Outgoing RTP sequence numbers: one continuous series for the subscriber however the input
//! changes underneath (a layer switch, a pause, packets the forwarder drops), so a gap the
//! subscriber sees is a packet really lost on the way, and its NACK names a packet that was sent.

use std::collections::VecDeque;

/// Input packets further behind the newest than this are too late to forward.
const REORDER_WINDOW: u64 = 1 << 10;

/// Sequence numbers extended past 16 bits, counted from a base high enough that a packet from
/// before the first one never underflows.
const ORIGIN: u64 = 1 << 32;

#[derive(Debug)]
pub(crate) struct Sequencer {
    /// The newest output number, extended.
    last_out: u64,
    input: Option<InputStream>,
}

/// The mapping for the input stream currently forwarded.
#[derive(Debug)]
struct InputStream {
    /// Extended number of the stream's first packet: anything older belongs to what came before.
    first: u64,
    highest: u64,
    /// Output = input + delta − (dropped packets before input).
    delta: i64,
    /// Extended input numbers of dropped packets, ascending, within the reorder window.
    dropped: VecDeque<u64>,
}

impl Sequencer {
    /// `first_out` is the number the subscriber will see first.
    pub(crate) fn new(first_out: u16) -> Self {
        Self {
            last_out: ORIGIN + u64::from(first_out) - 1,
            input: None,
        }
    }

    /// The next packet forwarded, `first`, starts a new input stream (a layer switch or a resume):
    /// it gets the number after the last one sent.
    pub(crate) fn switch(&mut self, first: u16) {
        let first = ORIGIN + u64::from(first);
        self.input = Some(InputStream {
            first,
            highest: first - 1,
            delta: (self.last_out + 1) as i64 - first as i64,
            dropped: VecDeque::new(),
        });
    }

    /// The output number for a forwarded packet of the current stream, or `None` if it is too
    /// late to forward (from before the stream began, or outside the reorder window).
    pub(crate) fn forward(&mut self, seq: u16) -> Option<u16> {
        let input = self.input.as_mut()?;
        let ext = input.extend(seq)?;
        if input.dropped.binary_search(&ext).is_ok() {
            return None;
        }
        let dropped_before = input.dropped.partition_point(|&d| d < ext);
        let out = (ext as i64 + input.delta - dropped_before as i64) as u64;
        if ext > input.highest {
            input.highest = ext;
        }
        self.last_out = self.last_out.max(out);
        Some(out as u16)
    }

    /// A packet of the current stream the forwarder drops (padding): later packets close the gap.
    pub(crate) fn drop_packet(&mut self, seq: u16) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        let Some(ext) = input.extend(seq) else {
            return;
        };
        // A late packet's number was already skipped over in the output; nothing to close.
        if ext <= input.highest {
            return;
        }
        input.highest = ext;
        input.dropped.push_back(ext);
        while input
            .dropped
            .front()
            .is_some_and(|&d| d + REORDER_WINDOW < ext)
        {
            // Packets that old are refused anyway, so the drop can be folded into the delta.
            input.dropped.pop_front();
            input.delta -= 1;
            input.first = input.first.max(ext - REORDER_WINDOW);
        }
    }

    #[cfg(test)]
    fn last_out(&self) -> u16 {
        self.last_out as u16
    }
}

impl InputStream {
    fn extend(&self, seq: u16) -> Option<u64> {
        let diff = seq.wrapping_sub(self.highest as u16) as i16;
        let ext = (self.highest as i64 + i64::from(diff)) as u64;
        let too_old = ext < self.first || ext + REORDER_WINDOW < self.highest;
        (!too_old).then_some(ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(s: &mut Sequencer, input: &[u16]) -> Vec<Option<u16>> {
        input.iter().map(|&seq| s.forward(seq)).collect()
    }

    #[test]
    fn the_first_stream_starts_at_the_chosen_number() {
        let mut s = Sequencer::new(1000);
        s.switch(40);
        assert_eq!(
            forwarded(&mut s, &[40, 41, 42]),
            [Some(1000), Some(1001), Some(1002)]
        );
    }

    #[test]
    fn a_switch_continues_one_past_the_last_number_sent() {
        let mut s = Sequencer::new(1000);
        s.switch(40);
        forwarded(&mut s, &[40, 41]);
        s.switch(9000);
        assert_eq!(forwarded(&mut s, &[9000, 9001]), [Some(1002), Some(1003)]);
    }

    #[test]
    fn dropped_packets_leave_no_gap() {
        let mut s = Sequencer::new(0);
        s.switch(10);
        s.forward(10);
        s.drop_packet(11);
        s.drop_packet(12);
        assert_eq!(s.forward(13), Some(1));
        assert_eq!(s.forward(14), Some(2));
    }

    #[test]
    fn a_reordered_packet_keeps_the_number_its_place_deserves() {
        let mut s = Sequencer::new(0);
        s.switch(10);
        s.forward(10);
        s.drop_packet(11);
        assert_eq!(
            s.forward(13),
            Some(2),
            "12 is still missing, so 13 leaves room for it"
        );
        assert_eq!(s.forward(12), Some(1));
        assert_eq!(
            s.forward(11),
            None,
            "a duplicate of the dropped packet stays dropped"
        );
    }

    #[test]
    fn a_real_loss_stays_a_gap_so_the_subscriber_can_ask_for_it() {
        let mut s = Sequencer::new(0);
        s.switch(10);
        assert_eq!(forwarded(&mut s, &[10, 12]), [Some(0), Some(2)]);
    }

    #[test]
    fn input_and_output_wrap_around_sixteen_bits() {
        let mut s = Sequencer::new(65_534);
        s.switch(65_535);
        assert_eq!(
            forwarded(&mut s, &[65_535, 0, 1]),
            [Some(65_534), Some(65_535), Some(0)]
        );
        s.drop_packet(2);
        assert_eq!(s.forward(3), Some(1));
        assert_eq!(s.last_out(), 1);
    }

    #[test]
    fn packets_from_before_the_switch_are_refused() {
        let mut s = Sequencer::new(0);
        s.switch(500);
        s.forward(500);
        assert_eq!(s.forward(499), None);
        assert_eq!(s.forward(500 + 2000), Some(2000));
        assert_eq!(s.forward(600), None, "outside the reorder window");
    }

    #[test]
    fn nothing_is_forwarded_before_the_first_stream() {
        let mut s = Sequencer::new(7);
        assert_eq!(s.forward(1), None);
        s.drop_packet(1);
    }

    #[test]
    fn a_long_run_of_drops_stays_bounded_and_correct() {
        let mut s = Sequencer::new(0);
        s.switch(0);
        s.forward(0);
        for seq in 1..5000u16 {
            if seq % 2 == 0 {
                s.drop_packet(seq);
            } else {
                assert_eq!(s.forward(seq), Some(seq.div_ceil(2)));
            }
        }
        assert!(s.input.as_ref().unwrap().dropped.len() <= REORDER_WINDOW as usize);
    }
}
