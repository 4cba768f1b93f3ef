//! One thread that reads every sampling subscriber's socket, counts each RTP datagram, and hands
//! webrtc-rs only the ones it must see.
//!
//! With a tokio read loop per socket, every datagram of every subscriber cost a task wake-up, an
//! epoll round and two `recvfrom` calls (the second one finding the socket empty): two thirds of
//! what a sampling subscriber cost the generator. Here one epoll set covers all the sockets, and
//! each ready socket is read with one `recvmmsg` ([`RecvBatch`]); a datagram is counted in its
//! subscriber's [`Arrivals`] as before, and only what `Arrivals::admit` lets through (the
//! sample, and all STUN, DTLS and RTCP) is copied into that subscriber's queue, which its
//! [`crate::sampling::SampledSocket`] reads in place of the socket.
//!
//! The thread inherits the generator's core pinning, so its CPU time is in the generator's
//! figures. It ends when the last [`Registration`] and the [`SocketReader`] itself are dropped.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::recv_batch::RecvBatch;
use crate::sampling::Arrivals;

/// Ready sockets one `epoll_wait` reports at most; the rest wait for the next round.
const EVENTS: usize = 512;
/// Datagrams a subscriber's queue holds for webrtc-rs, about what a default socket receive
/// buffer holds of 1,200-byte packets: beyond it a datagram is dropped, as the kernel would.
const QUEUE: usize = 256;
/// The epoll token of the stop signal; sockets' tokens count up from 0.
const WAKE: u64 = u64::MAX;
/// A round of reads starts at most this often, so the thread wakes at most 2,000 times a second
/// however many datagrams arrive (woken by each, it would wake up to once a datagram, a
/// cross-core wake-up each). The price: up to this much more delay before webrtc-rs sees a
/// sampled packet, which the latency figures include, as they include any wait in a socket's
/// queue.
const ROUND: Duration = Duration::from_micros(500);

/// A datagram webrtc-rs must see, and who sent it.
#[derive(Debug)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub from: SocketAddr,
}

/// The reading thread and the sockets it reads.
pub struct SocketReader {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    epoll: OwnedFd,
    /// An eventfd in the epoll set: written to stop the thread.
    wake: OwnedFd,
    stop: AtomicBool,
    /// Held by the thread while it reads a round's ready sockets, so a socket is never removed
    /// (and closed) in the middle of a read.
    slots: Mutex<HashMap<u64, Slot>>,
    next_token: AtomicU64,
    /// Datagrams dropped because a subscriber's queue was full.
    overflowed: AtomicU64,
}

/// One registered socket.
struct Slot {
    /// Shared with the subscriber's sending side; the slot's reference keeps the descriptor from
    /// being closed (and its number reused) while it is in the epoll set.
    socket: Arc<UdpSocket>,
    arrivals: Arc<Arrivals>,
    to_webrtc: mpsc::Sender<Datagram>,
}

/// A socket's place in the reader; dropping it takes the socket out of the epoll set.
pub struct Registration {
    reader: Arc<SocketReader>,
    token: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reader.deregister(self.token);
    }
}

impl SocketReader {
    /// Starts the thread, with no sockets yet.
    pub fn start() -> io::Result<Arc<Self>> {
        // SAFETY: no pointers; the result is checked before use.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        // SAFETY: no pointers; the result is checked before use.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(wake) };
        epoll_add(&epoll, wake.as_raw_fd(), WAKE)?;
        let inner = Arc::new(Inner {
            epoll,
            wake,
            stop: AtomicBool::new(false),
            slots: Mutex::default(),
            next_token: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("sampled-rx".into())
            .spawn({
                let inner = Arc::clone(&inner);
                move || run(&inner)
            })?;
        Ok(Arc::new(Self {
            inner,
            thread: Some(thread),
        }))
    }

    /// Reads `socket` from now on (made non-blocking), counting into `arrivals`; the receiver
    /// gets what webrtc-rs must see. Register before the socket's address is given out, so no
    /// datagram arrives unread.
    pub fn register(
        self: &Arc<Self>,
        socket: Arc<UdpSocket>,
        arrivals: Arc<Arrivals>,
    ) -> io::Result<(Registration, mpsc::Receiver<Datagram>)> {
        socket.set_nonblocking(true)?;
        // The server's GSO messages then cost this core one datagram each, and the server's
        // core (loopback bills it the receive path) no per-packet work a remote receiver would
        // do: see `recv_batch`.
        crate::recv_batch::enable_gro(socket.as_raw_fd())?;
        let (to_webrtc, from_reader) = mpsc::channel(QUEUE);
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let fd = socket.as_raw_fd();
        let mut slots = self.inner.lock_slots();
        slots.insert(
            token,
            Slot {
                socket,
                arrivals,
                to_webrtc,
            },
        );
        if let Err(e) = epoll_add(&self.inner.epoll, fd, token) {
            slots.remove(&token);
            return Err(e);
        }
        let registration = Registration {
            reader: Arc::clone(self),
            token,
        };
        Ok((registration, from_reader))
    }

    fn deregister(&self, token: u64) {
        let mut slots = self.inner.lock_slots();
        if let Some(slot) = slots.remove(&token) {
            // SAFETY: both descriptors are open (the slot still holds the socket); a null event
            // is allowed for EPOLL_CTL_DEL.
            unsafe {
                libc::epoll_ctl(
                    self.inner.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    slot.socket.as_raw_fd(),
                    std::ptr::null_mut(),
                );
            }
        }
    }

    /// Sockets being read.
    pub fn registered(&self) -> usize {
        self.inner.lock_slots().len()
    }

    /// Datagrams for webrtc-rs dropped because a subscriber's queue was full.
    pub fn overflowed(&self) -> u64 {
        self.inner.overflowed.load(Ordering::Relaxed)
    }
}

impl Drop for SocketReader {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        let one = 1u64;
        // SAFETY: writes the 8 bytes of a live u64 to an open eventfd.
        unsafe {
            libc::write(
                self.inner.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let overflowed = self.overflowed();
        if overflowed > 0 {
            eprintln!(
                "sampling: {overflowed} datagrams for webrtc-rs dropped, their subscriber's queue full"
            );
        }
    }
}

impl Inner {
    /// The map stays consistent whatever panicked while holding it: each change is one call.
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Adds `fd` to the epoll set, level-triggered for input.
fn epoll_add(epoll: &OwnedFd, fd: i32, token: u64) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open; the kernel copies the event before returning.
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The thread: waits for ready sockets and reads each once a round, a round every [`ROUND`] at
/// most.
fn run(inner: &Inner) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut batch = RecvBatch::new();
    let mut last_round: Option<Instant> = None;
    while !inner.stop.load(Ordering::Acquire) {
        // Idle, the wait below returns at the first datagram; busy, it finds the round's.
        if let Some(wait) = last_round.and_then(|t| ROUND.checked_sub(t.elapsed())) {
            std::thread::sleep(wait);
        }
        // SAFETY: `events` has room for EVENTS entries; the epoll descriptor is open.
        let n = unsafe {
            libc::epoll_wait(
                inner.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS as libc::c_int,
                -1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("sampling: the socket reader stops: epoll_wait: {e}");
            break;
        }
        last_round = Some(Instant::now());
        let slots = inner.lock_slots();
        for event in &events[..n as usize] {
            // Copied out: the struct is packed.
            let token = event.u64;
            if let Some(slot) = slots.get(&token) {
                slot.read(&mut batch, &inner.overflowed);
            }
        }
    }
    // However the thread ended, the connections' reads end too rather than wait forever.
    inner.lock_slots().clear();
}

impl Slot {
    /// One `recvmmsg`. Level-triggered, a socket left with more than a batch is reported again
    /// next round, after every other ready socket had its turn; a short batch means it is
    /// drained, with no empty read to find that out.
    fn read(&self, batch: &mut RecvBatch, overflowed: &AtomicU64) {
        // An error (even EINTR) leaves the socket ready; the next round tries again.
        let Ok(n) = batch.recv(self.socket.as_raw_fd()) else {
            return;
        };
        for i in 0..n {
            let Some((_, from)) = batch.get(i) else {
                break;
            };
            for packet in batch.packets(i) {
                if !self.arrivals.admit(packet) {
                    continue;
                }
                if let Some(from) = from {
                    self.pass_on(packet, from, overflowed);
                }
            }
        }
    }

    fn pass_on(&self, packet: &[u8], from: SocketAddr, overflowed: &AtomicU64) {
        let datagram = Datagram {
            data: packet.to_vec(),
            from,
        };
        match self.to_webrtc.try_send(datagram) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflowed.fetch_add(1, Ordering::Relaxed);
            }
            // The subscriber is going away; its registration is about to be dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut d = vec![0x80, 96];
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&ssrc.to_be_bytes());
        d.extend_from_slice(&[0xab; 100]);
        d
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn every_rtp_datagram_is_counted_and_only_the_admitted_ones_passed_on() {
        let reader = SocketReader::start().unwrap();
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let to = socket.local_addr().unwrap();
        // One in u32::MAX: only a track's first packet is sampled.
        let arrivals = Arc::new(Arrivals::new(u32::MAX, 1));
        let (registration, mut rx) = reader
            .register(Arc::clone(&socket), Arc::clone(&arrivals))
            .unwrap();
        assert_eq!(reader.registered(), 1);

        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        peer.send_to(&stun, to).unwrap();
        // More than a batch, so one socket is read over several rounds.
        for seq in 0..100 {
            peer.send_to(&rtp(seq, 5), to).unwrap();
        }
        let rtcp = [0x81u8, 201, 0, 1, 0, 0, 0, 5];
        peer.send_to(&rtcp, to).unwrap();
        wait_for("100 RTP packets counted", || arrivals.received(5) == 100);

        let mut passed = Vec::new();
        wait_for("three datagrams passed on", || {
            while let Ok(d) = rx.try_recv() {
                passed.push(d);
            }
            passed.len() >= 3
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(rx.try_recv().is_err(), "nothing else passes");
        assert_eq!(passed[0].data, stun);
        assert_eq!(passed[0].from, peer.local_addr().unwrap());
        assert_eq!(passed[1].data, rtp(0, 5), "a track's first packet");
        assert_eq!(passed[2].data, rtcp);

        // Dropped: out of the set, so later datagrams stay unread and uncounted.
        drop(registration);
        assert_eq!(reader.registered(), 0);
        peer.send_to(&rtp(100, 5), to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(arrivals.received(5), 100);
        assert!(rx.try_recv().is_err());
        assert_eq!(reader.overflowed(), 0);
        // Dropping the reader stops and joins its thread.
        drop(reader);
    }

    #[test]
    fn each_packet_of_a_gso_message_is_counted_and_sampled_on_its_own() {
        let reader = SocketReader::start().unwrap();
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let to = socket.local_addr().unwrap();
        let arrivals = Arc::new(Arrivals::new(u32::MAX, 1));
        let (_registration, mut rx) = reader.register(socket, Arc::clone(&arrivals)).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let frame: Vec<Vec<u8>> = (0..4).map(|seq| rtp(seq, 9)).collect();
        crate::recv_batch::tests::send_gso(&peer, &frame, to);
        wait_for("four RTP packets counted", || arrivals.received(9) == 4);
        let first = loop {
            if let Ok(d) = rx.try_recv() {
                break d;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(
            first.data, frame[0],
            "the track's first packet alone, not the message"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert!(rx.try_recv().is_err(), "nothing else passes");
    }

    #[test]
    fn a_full_queue_drops_and_counts_rather_than_blocks() {
        let reader = SocketReader::start().unwrap();
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let to = socket.local_addr().unwrap();
        let arrivals = Arc::new(Arrivals::new(1, 1));
        let (_registration, mut rx) = reader.register(socket, arrivals).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = QUEUE as u64 + 10;
        for seq in 0..sent {
            peer.send_to(&rtp(seq as u16, 7), to).unwrap();
            // Below the socket's own buffer, so only the queue can drop.
            if seq % 64 == 63 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        wait_for("the overflow", || reader.overflowed() == 10);
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
    }
}
