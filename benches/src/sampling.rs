//! Sampled reception: a subscriber that decrypts one forwarded packet in K and counts them all.
//!
//! Decrypting and reading every packet of every subscriber made the generator, not the server,
//! the limit past about 150 subscribers. A sampling subscriber's datagrams are read, with every
//! other sampling subscriber's, by one thread ([`crate::socket_reader`]) before webrtc-rs sees
//! them. An RTP datagram's header is clear text under SRTP, so its SSRC and sequence number are
//! counted for every packet ([`Arrivals`]); only a pseudo-random one in K is handed on, through
//! the connection's [`SampledSocket`], to be decrypted and have its probe read (latency). STUN,
//! DTLS and RTCP always pass.
//!
//! The window's packets are found among the counted ones by sequence number: each decrypted
//! packet ties its probe counter to its sequence number ([`CounterMap`]), and the publisher says
//! which counters it stamped inside the window, so "delivered" is the same set of packets an
//! unsampled run counts, taken from the counts rather than scaled up from the sample.
//!
//! Skipped packets never reach webrtc-rs, so they can cause nothing on the wire: these peers
//! register no interceptors (no NACKs, receiver reports or TWCC feedback; [`Arrivals`] counts
//! any RTCP they send, to show it stays zero). SRTP's rollover counter is estimated from the
//! last decrypted sequence number and copes with any forward jump under 2^15, far above the gaps
//! a sample of one in [`MAX_EVERY`] leaves.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::net::UdpSocket;

use tokio::sync::mpsc;
use webrtc::util::Conn;

use crate::socket_reader::{Datagram, Registration, SocketReader};

/// The largest sampling factor accepted: enough samples per window for latency percentiles
/// from audio's 50 packets/s, and gaps far below the 2^15 SRTP's rollover estimate allows.
pub const MAX_EVERY: u32 = 100;

/// Sequence numbers extended past 16 bits start here, so one older than the first never
/// underflows.
const ORIGIN: u64 = 1 << 32;
/// A track's arrival bitmap covers at most this many sequence numbers (512 KiB, hours of video);
/// beyond it packets are still counted, only not placed.
const MAX_SPAN: u64 = 1 << 22;
/// An RTP fixed header.
const RTP_HEADER_LEN: usize = 12;

/// The SSRC and sequence number of an RTP (or SRTP) datagram, or `None` for anything else.
///
/// RFC 7983: a first byte in 128..=191 is RTP or RTCP. RFC 5761 §4: on a shared port, a second
/// byte in 192..=223 (RTP payload types 64–95 with the marker bit, which RTP must not use) is
/// RTCP. This is the rule webrtc-rs's own demultiplexer applies (`mux_func::is_rtcp`), so a
/// datagram counted here is one webrtc-rs would have handed to SRTP.
pub fn rtp_header(datagram: &[u8]) -> Option<(u32, u16)> {
    let head = datagram.get(..RTP_HEADER_LEN)?;
    if !(128..=191).contains(&head[0]) || is_rtcp_type(head[1]) {
        return None;
    }
    let seq = u16::from_be_bytes([head[2], head[3]]);
    let ssrc = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    Some((ssrc, seq))
}

/// An RTCP (or SRTCP) datagram, by the same rule.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 4 && (128..=191).contains(&datagram[0]) && is_rtcp_type(datagram[1])
}

fn is_rtcp_type(second_byte: u8) -> bool {
    (192..=223).contains(&second_byte)
}

/// `seq` extended to the number nearest `highest` (RFC 3550 A.1): less than 2^15 ahead is
/// forward, across a wrap if need be; anything else is a late packet from behind.
pub fn extend(highest: u64, seq: u16) -> u64 {
    let ahead = seq.wrapping_sub(highest as u16) as i16;
    highest.wrapping_add_signed(i64::from(ahead))
}

/// Whether the packet with extended number `ext` on `ssrc` is one of the sampled ones.
///
/// A hash rather than `seq % every`: a fixed stride would lock onto a packet's position in its
/// frame (a delta frame is 5 packets, so one in 10 would always be the same position, and a
/// frame's first packet waits less than its last), biasing the latency sample.
pub fn sampled(salt: u64, ssrc: u32, ext: u64, every: u32) -> bool {
    every <= 1 || mix(salt ^ (u64::from(ssrc) << 20) ^ ext).is_multiple_of(u64::from(every))
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Which sequence numbers of one SSRC arrived.
#[derive(Debug, Default)]
pub struct SeqLog {
    highest: Option<u64>,
    /// The extended number of bit 0 of `bits`: the first packet's.
    base: u64,
    bits: Vec<u64>,
    /// Distinct packets received, those from before the first one included.
    received: u64,
}

impl SeqLog {
    /// `seq` extended against the highest number so far.
    pub fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            Some(h) => extend(h, seq),
            None => ORIGIN + u64::from(seq),
        }
    }

    /// Counts one arrival (a duplicate once only); its extended number.
    pub fn record(&mut self, seq: u16) -> u64 {
        let ext = self.extend(seq);
        let highest = *self.highest.get_or_insert(ext);
        if self.received == 0 {
            self.base = ext;
        }
        self.highest = Some(highest.max(ext));
        let Some(offset) = ext.checked_sub(self.base) else {
            // From before the first packet: counted, not placed.
            self.received += 1;
            return ext;
        };
        if offset >= MAX_SPAN {
            self.received += 1;
            return ext;
        }
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) == 0 {
            self.bits[word] |= 1 << bit;
            self.received += 1;
        }
        ext
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// The highest extended number received.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Distinct packets received with extended numbers in `from..to`.
    pub fn received_between(&self, from: u64, to: u64) -> u64 {
        let from = from.saturating_sub(self.base);
        let to = to
            .saturating_sub(self.base)
            .min(self.bits.len() as u64 * 64);
        if from >= to {
            return 0;
        }
        let mut n = 0;
        let mut i = from;
        while i < to {
            let word = self.bits[(i / 64) as usize];
            let lo = i % 64;
            let hi = (to - (i - lo)).min(64);
            let mask = if hi == 64 { !0u64 } else { (1u64 << hi) - 1 } & !((1u64 << lo) - 1);
            n += u64::from((word & mask).count_ones());
            i = i - lo + 64;
        }
        n
    }

    /// Expected (highest − first + 1) minus received, as an RTCP receiver report counts loss.
    pub fn lost(&self) -> u64 {
        match self.highest {
            Some(h) => (h + 1)
                .saturating_sub(self.base)
                .saturating_sub(self.received),
            None => 0,
        }
    }
}

/// Where one track's probe counters fall among its received sequence numbers.
///
/// The server numbers what it forwards in one continuous series; for one publisher's stream
/// that is the publisher's own series shifted by a constant, until the server drops a packet
/// on purpose and closes the gap. So the map keeps a run per shift, each starting at the
/// first decrypted packet that showed it; a counter between two runs' samples is placed with
/// the earlier one, at most K − 1 packets from where the shift really happened.
#[derive(Clone, Debug, Default)]
pub struct CounterMap {
    /// (first counter of the run, extended sequence number − counter), counters ascending.
    runs: Vec<(u32, i64)>,
}

impl CounterMap {
    /// Learns from one decrypted packet.
    pub fn learn(&mut self, counter: u32, ext: u64) {
        let shift = ext as i64 - i64::from(counter);
        match self.runs.last() {
            Some(&(_, s)) if s == shift => {}
            // A late packet from before the newest run: nothing new.
            Some(&(c, _)) if counter <= c => {}
            _ => self.runs.push((counter, shift)),
        }
    }

    /// The extended sequence number the packet with probe `counter` has (or would have had).
    pub fn seq_of(&self, counter: u64) -> Option<u64> {
        let run = self
            .runs
            .iter()
            .rev()
            .find(|(c, _)| u64::from(*c) <= counter)
            .or(self.runs.first())?;
        u64::try_from(counter as i64 + run.1).ok()
    }
}

/// One connection's arrivals, per SSRC, and what it passes on to webrtc-rs.
#[derive(Debug)]
pub struct Arrivals {
    every: u32,
    salt: u64,
    /// Per SSRC; a subscriber has two per publisher, so a scan beats hashing.
    tracks: Mutex<Vec<(u32, SeqLog)>>,
    /// RTCP datagrams this connection sent: none while no interceptor is registered.
    rtcp_sent: AtomicU64,
}

impl Arrivals {
    /// Passes one RTP packet in `every` on; `salt` makes connections pick different ones.
    pub fn new(every: u32, salt: u64) -> Self {
        Self {
            every: every.max(1),
            salt,
            tracks: Mutex::default(),
            rtcp_sent: AtomicU64::new(0),
        }
    }

    /// Counts one incoming datagram; whether webrtc-rs gets it.
    pub fn admit(&self, datagram: &[u8]) -> bool {
        let Some((ssrc, seq)) = rtp_header(datagram) else {
            return true;
        };
        let (ext, first) = match self.tracks.lock() {
            Ok(mut tracks) => {
                let i = match tracks.iter().position(|(s, _)| *s == ssrc) {
                    Some(i) => i,
                    None => {
                        tracks.push((ssrc, SeqLog::default()));
                        tracks.len() - 1
                    }
                };
                let log = &mut tracks[i].1;
                (log.record(seq), log.received() == 1)
            }
            // A poisoned lock counts nothing more; decrypting everything keeps the run honest.
            Err(_) => return true,
        };
        // A track's first packet always passes: webrtc-rs announces the track on it, rather
        // than up to K packets later.
        first || sampled(self.salt, ssrc, ext, self.every)
    }

    /// Notes one outgoing datagram.
    pub fn sent(&self, datagram: &[u8]) {
        if is_rtcp(datagram) {
            self.rtcp_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rtcp_sent(&self) -> u64 {
        self.rtcp_sent.load(Ordering::Relaxed)
    }

    /// `seq` of `ssrc` extended as it was when counted (the packet has been, if it was sampled).
    pub fn extend(&self, ssrc: u32, seq: u16) -> Option<u64> {
        self.with_log(ssrc, |log| log.extend(seq))
    }

    /// Runs `f` on the log of `ssrc`, if any packet of it arrived.
    pub fn with_log<T>(&self, ssrc: u32, f: impl FnOnce(&SeqLog) -> T) -> Option<T> {
        let tracks = self.tracks.lock().ok()?;
        tracks
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, log)| f(log))
    }

    pub fn received(&self, ssrc: u32) -> u64 {
        self.with_log(ssrc, SeqLog::received).unwrap_or(0)
    }
}

/// A subscriber's UDP socket as its webrtc-rs UDP mux (`UDPMuxParams::new`) sees it: reads come
/// from the [`SocketReader`] thread, which counts every RTP datagram and queues only what
/// [`Arrivals::admit`] lets through; writes go straight to the socket. One per subscriber, so the
/// server sees each on its own address as before.
pub struct SampledSocket {
    socket: Arc<UdpSocket>,
    arrivals: Arc<Arrivals>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Datagram>>,
    /// Dropped with the mux that owns this: the socket leaves the reader's set, then closes.
    _registration: Registration,
}

/// How often a write the socket's full send buffer refused is tried again, a millisecond apart.
const SEND_RETRIES: u32 = 20;

impl SampledSocket {
    /// Registers `socket` with `reader` now, before ICE gives its address out.
    pub fn new(
        socket: UdpSocket,
        arrivals: Arc<Arrivals>,
        reader: &Arc<SocketReader>,
    ) -> std::io::Result<Self> {
        let socket = Arc::new(socket);
        let (registration, incoming) =
            reader.register(Arc::clone(&socket), Arc::clone(&arrivals))?;
        Ok(Self {
            socket,
            arrivals,
            incoming: tokio::sync::Mutex::new(incoming),
            _registration: registration,
        })
    }

    /// The next datagram the reader passed on, copied into `buf` (cut to fit, as a socket read
    /// would). Cancel-safe, as the mux's `select!` needs: a datagram leaves the queue only in
    /// the poll that returns it.
    async fn next(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        let mut incoming = self.incoming.lock().await;
        let Some(datagram) = incoming.recv().await else {
            let stopped = std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the sampling socket reader has stopped",
            );
            return Err(stopped.into());
        };
        let n = datagram.data.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram.data[..n]);
        Ok((n, datagram.from))
    }

    /// Writes without blocking the runtime: the socket is non-blocking for the reader's sake.
    async fn write(&self, buf: &[u8], target: Option<SocketAddr>) -> UtilResult<usize> {
        self.arrivals.sent(buf);
        let mut retries = 0;
        loop {
            let sent = match target {
                Some(target) => self.socket.send_to(buf, target),
                None => self.socket.send(buf),
            };
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && retries < SEND_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                sent => return Ok(sent?),
            }
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type UtilResult<T> = webrtc::util::Result<T>;

// `Conn` is an `async_trait` trait; these are the signatures that macro gives its methods
// (written out so the bench needs no proc-macro dependency of its own).
impl Conn for SampledSocket {
    fn connect<'a, 'f>(&'a self, addr: SocketAddr) -> BoxFuture<'f, UtilResult<()>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(async move { Ok(self.socket.connect(addr)?) })
    }

    fn recv<'a, 'b, 'f>(&'a self, buf: &'b mut [u8]) -> BoxFuture<'f, UtilResult<usize>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move { Ok(self.next(buf).await?.0) })
    }

    fn recv_from<'a, 'b, 'f>(
        &'a self,
        buf: &'b mut [u8],
    ) -> BoxFuture<'f, UtilResult<(usize, SocketAddr)>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.next(buf))
    }

    fn send<'a, 'b, 'f>(&'a self, buf: &'b [u8]) -> BoxFuture<'f, UtilResult<usize>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.write(buf, None))
    }

    fn send_to<'a, 'b, 'f>(
        &'a self,
        buf: &'b [u8],
        target: SocketAddr,
    ) -> BoxFuture<'f, UtilResult<usize>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(self.write(buf, Some(target)))
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn close<'a, 'f>(&'a self) -> BoxFuture<'f, UtilResult<()>>
    where
        'a: 'f,
        Self: 'f,
    {
        // The socket closes when the mux that owns it is dropped.
        Box::pin(async { Ok(()) })
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, second: u8, seq: u16, ssrc: u32) -> Vec<u8> {
        let mut d = vec![first, second];
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&ssrc.to_be_bytes());
        d.extend_from_slice(&[0xab; 20]);
        d
    }

    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        // VP8 (96) without and with the marker bit.
        assert_eq!(rtp_header(&rtp(0x80, 96, 7, 42)), Some((42, 7)));
        assert_eq!(rtp_header(&rtp(0x80, 0x80 | 96, 7, 42)), Some((42, 7)));
        // Opus (111) with the marker bit is 239: still RTP.
        assert_eq!(rtp_header(&rtp(0x90, 0x80 | 111, 1, 1)), Some((1, 1)));
        // Sender report (200), receiver report (201), feedback (205, 206), and the whole
        // reserved range 192..=223.
        for pt in [192, 200, 201, 205, 206, 223] {
            let d = rtp(0x81, pt, 0, 0);
            assert_eq!(rtp_header(&d), None, "{pt}");
            assert!(is_rtcp(&d), "{pt}");
        }
        assert!(!is_rtcp(&rtp(0x80, 96, 0, 0)));
        // STUN (0..=3), DTLS (20..=63), a too short datagram.
        assert_eq!(rtp_header(&rtp(0x00, 0x01, 0, 0)), None);
        assert_eq!(rtp_header(&rtp(22, 0xfe, 0, 0)), None);
        assert_eq!(rtp_header(&[0x80, 96, 0, 1]), None);
        assert!(!is_rtcp(&[0x80, 200]));
    }

    #[test]
    fn sequence_numbers_extend_across_the_wrap_both_ways() {
        let h = ORIGIN + 65_530;
        assert_eq!(extend(h, 65_535), ORIGIN + 65_535);
        assert_eq!(extend(h, 3), ORIGIN + 65_539);
        assert_eq!(extend(h, 65_000), ORIGIN + 65_000);
        let h = ORIGIN + 65_536 + 2;
        assert_eq!(
            extend(h, 65_534),
            ORIGIN + 65_534,
            "late, from before the wrap"
        );
        assert_eq!(extend(h, 102), ORIGIN + 65_536 + 102);
    }

    #[test]
    fn a_log_counts_each_packet_once_and_loss_as_a_receiver_report_does() {
        let mut log = SeqLog::default();
        // 65_530 ..= 65_535, 0 ..= 9 across the wrap, with 65_533 and 4 lost, 2 duplicated.
        let seqs = (65_530u16..=65_535)
            .chain(0..10)
            .filter(|s| *s != 65_533 && *s != 4);
        for s in seqs {
            log.record(s);
        }
        log.record(2);
        assert_eq!(log.received(), 14);
        assert_eq!(log.lost(), 2);
        let first = ORIGIN + 65_530;
        assert_eq!(log.highest(), Some(first + 15));
        assert_eq!(log.received_between(first, first + 16), 14);
        assert_eq!(log.received_between(first + 3, first + 4), 0);
        assert_eq!(log.received_between(first + 4, first + 11), 6);
        assert_eq!(log.received_between(first + 11, first + 1_000), 5);
        assert_eq!(log.received_between(0, first), 0);
        assert_eq!(log.received_between(first + 9, first + 3), 0);
        // A late packet from before the first is counted but cannot be placed.
        log.record(65_529);
        assert_eq!(log.received(), 15);
        assert_eq!(log.received_between(0, u64::MAX), 14);
    }

    #[test]
    fn ranges_across_bitmap_words_are_counted_exactly() {
        let mut log = SeqLog::default();
        for s in 0..300u16 {
            if s % 7 != 3 {
                log.record(s);
            }
        }
        let base = ORIGIN;
        for (from, to) in [(0, 300), (1, 64), (63, 65), (60, 200), (128, 192), (5, 5)] {
            let expected = (from..to).filter(|s| s % 7 != 3).count() as u64;
            assert_eq!(
                log.received_between(base + from, base + to),
                expected,
                "{from}..{to}"
            );
        }
    }

    #[test]
    fn sampling_passes_about_one_in_k_without_a_stride() {
        let every = 10;
        let picked: Vec<u64> = (0..20_000u64)
            .filter(|&e| sampled(7, 1234, ORIGIN + e, every))
            .collect();
        let share = picked.len() as f64 / 20_000.0;
        assert!((0.09..0.11).contains(&share), "{share}");
        // Every position in a 5-packet frame is represented about equally.
        for position in 0..5 {
            let n = picked.iter().filter(|e| *e % 5 == position).count() as f64;
            assert!(
                (n / picked.len() as f64 - 0.2).abs() < 0.03,
                "{position}: {n}"
            );
        }
        // Gaps stay far below what SRTP's rollover estimate needs (< 2^15).
        let widest = picked.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(widest < 200, "{widest}");
        assert!((0..100).all(|e| sampled(7, 1, e, 1)));
    }

    #[test]
    fn arrivals_count_everything_and_pass_rtcp_stun_and_dtls() {
        let arrivals = Arrivals::new(10, 99);
        assert!(
            arrivals.admit(&rtp(0x80, 96, 0, 5)),
            "a track's first packet"
        );
        let mut passed = 0;
        for seq in 1..1_000u16 {
            if arrivals.admit(&rtp(0x80, 96, seq, 5)) {
                passed += 1;
            }
        }
        assert!((60..140).contains(&passed), "{passed}");
        assert_eq!(arrivals.received(5), 1_000);
        assert_eq!(arrivals.received(6), 0);
        assert!(arrivals.admit(&rtp(0x80, 200, 0, 5)));
        assert!(arrivals.admit(&[0x00, 0x01, 0x00, 0x00]));
        assert!(arrivals.admit(&[22, 0xfe, 0xfd]));
        assert_eq!(arrivals.received(5), 1_000);
        assert_eq!(arrivals.extend(5, 3), Some(ORIGIN + 3));
        arrivals.sent(&rtp(0x80, 96, 0, 5));
        assert_eq!(arrivals.rtcp_sent(), 0);
        arrivals.sent(&rtp(0x80, 201, 0, 5));
        assert_eq!(arrivals.rtcp_sent(), 1);
    }

    #[test]
    fn counters_map_to_sequence_numbers_across_a_renumbering() {
        let mut map = CounterMap::default();
        assert_eq!(map.seq_of(5), None);
        // Counter c arrives as ORIGIN + 1000 + c, until the server drops counter 50 on purpose
        // and closes the gap: from 51 on, c arrives as ORIGIN + 999 + c.
        for c in [10u32, 20, 30, 40] {
            map.learn(c, ORIGIN + 1_000 + u64::from(c));
        }
        for c in [60u32, 70] {
            map.learn(c, ORIGIN + 999 + u64::from(c));
        }
        // A late sample from the first run changes nothing.
        map.learn(35, ORIGIN + 1_035);
        assert_eq!(
            map.seq_of(0),
            Some(ORIGIN + 1_000),
            "before the first sample"
        );
        assert_eq!(map.seq_of(25), Some(ORIGIN + 1_025));
        assert_eq!(map.seq_of(45), Some(ORIGIN + 1_045));
        assert_eq!(map.seq_of(65), Some(ORIGIN + 1_064));
        assert_eq!(map.seq_of(1_000), Some(ORIGIN + 1_999));
    }
}
