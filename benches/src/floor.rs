//! The physical floor of forwarding one packet on this machine: what any SFU must at least do per
//! packet and subscriber — copy the packet, rewrite its SSRC and sequence number, SRTP-protect it
//! with the profile roomcast negotiates with webrtc-rs peers (AEAD_AES_128_GCM), and send it on a
//! UDP socket to a loopback sink — batched as the platform allows: `sendmmsg` (32 datagrams a
//! call, each to its own subscriber address) or UDP GSO (`UDP_SEGMENT`, one call per run of
//! equal-size packets of one frame to one subscriber). The protection is done two ways: with
//! webrtc-srtp 0.17 (a fresh buffer per packet: the project's first floor), and sealed in place
//! in a reused buffer with ring's AES-GCM (what roomcast's own send path does).
//!
//! The sending thread's own CPU time is measured (`CLOCK_THREAD_CPUTIME_ID`); on loopback that
//! includes the kernel's receive path up to the sink's socket queue (once per GSO message: the
//! sinks take them whole, as the fan-out generator's subscribers do). Sinks are drained by
//! another thread so their queues never overflow.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use webrtc::srtp::context::Context;
use webrtc::srtp::protection_profile::ProtectionProfile;

use crate::clock::thread_cpu_micros;
use crate::media;

/// `UDP_SEGMENT` from linux/udp.h (not in the libc crate for this target).
const UDP_SEGMENT: libc::c_int = 103;
/// `SO_RCVBUFFORCE`: root may raise a receive buffer past `rmem_max`.
const SO_RCVBUFFORCE: libc::c_int = 33;
const BATCH: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendMode {
    /// `sendmmsg`, 32 datagrams a call, to distinct addresses.
    Sendmmsg,
    /// UDP GSO: one `sendmsg` per run of equal-size segments to one address.
    Gso,
    /// Protect only, send nothing: the crypto share of the floor.
    ProtectOnly,
    /// ring's AES-GCM sealed in place in reused buffers, then `sendmmsg` as above.
    RingSendmmsg,
    /// ring's AES-GCM sealed in place in reused buffers, then UDP GSO as above.
    RingGso,
}

impl SendMode {
    pub fn label(self) -> &'static str {
        match self {
            SendMode::Sendmmsg => "SRTP + sendmmsg",
            SendMode::Gso => "SRTP + UDP GSO",
            SendMode::ProtectOnly => "SRTP protect only",
            SendMode::RingSendmmsg => "ring GCM in place + sendmmsg",
            SendMode::RingGso => "ring GCM in place + UDP GSO",
        }
    }
}

#[derive(Clone, Debug)]
pub struct FloorResult {
    pub mode: SendMode,
    pub destinations: usize,
    /// Datagrams produced (packets × destinations).
    pub packets: u64,
    pub cpu_micros: u64,
}

impl FloorResult {
    pub fn micros_per_packet(&self) -> f64 {
        self.cpu_micros as f64 / self.packets.max(1) as f64
    }
}

/// One burst of plaintext RTP packets as a publisher sends them: a video frame or an audio packet.
struct Burst {
    packets: Vec<Vec<u8>>,
}

/// Two seconds of the benchmark stream (one group of pictures and its audio), as RTP.
fn stream() -> Vec<Burst> {
    let mut bursts = Vec::new();
    let mut seq = 0u16;
    for frame in 0..media::KEYFRAME_EVERY {
        let parts = media::split_frame(media::video_frame_bytes(frame));
        let packets = parts
            .iter()
            .map(|&len| {
                seq = seq.wrapping_add(1);
                rtp_bytes(96, seq, frame * 3000, len)
            })
            .collect();
        bursts.push(Burst { packets });
    }
    for n in 0..2 * media::AUDIO_PPS {
        bursts.push(Burst {
            packets: vec![rtp_bytes(111, n as u16, n * 960, media::AUDIO_PAYLOAD)],
        });
    }
    bursts
}

fn rtp_bytes(pt: u8, seq: u16, ts: u32, payload: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + payload);
    b.extend_from_slice(&[0x80, pt]);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.resize(12 + payload, 0xab);
    b
}

/// One subscriber as the floor sees it: an address, an SRTP context (and the same key for ring)
/// and its own SSRC/sequence.
struct Destination {
    addr: libc::sockaddr_in,
    ctx: Context,
    sealer: LessSafeKey,
    salt: [u8; 12],
    ssrc: u32,
    seq: u16,
}

impl Destination {
    /// What an SFU does per packet and subscriber: copy, rewrite SSRC and sequence, protect.
    fn protect(&mut self, plain: &[u8], scratch: &mut Vec<u8>) -> Result<Bytes> {
        scratch.clear();
        scratch.extend_from_slice(plain);
        scratch[2..4].copy_from_slice(&self.seq.to_be_bytes());
        scratch[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        Ok(self.ctx.encrypt_rtp(scratch)?)
    }

    /// The same, sealed in place into `out` (RFC 7714: the nonce is the salt XOR SSRC, rollover
    /// counter and sequence number; the header is the associated data; the tag is appended).
    fn protect_in_place(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        out.extend_from_slice(plain);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut iv = self.salt;
        for (i, b) in self.ssrc.to_be_bytes().into_iter().enumerate() {
            iv[2 + i] ^= b;
        }
        for (i, b) in self.seq.to_be_bytes().into_iter().enumerate() {
            iv[10 + i] ^= b;
        }
        self.seq = self.seq.wrapping_add(1);
        let (header, payload) = out.split_at_mut(12);
        let tag = self
            .sealer
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&*header),
                payload,
            )
            .map_err(|_| anyhow::anyhow!("AES-GCM seal failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

pub(crate) fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Pins the calling thread to `core`.
pub fn pin_thread(core: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Sinks on loopback and the thread that drains them.
struct Sinks {
    addrs: Vec<SocketAddrV4>,
    stop: Arc<AtomicBool>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Sinks {
    fn start(count: usize, core: Option<usize>) -> Result<Self> {
        let mut sockets = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..count {
            let s = UdpSocket::bind("127.0.0.1:0").context("binding a sink")?;
            s.set_read_timeout(Some(Duration::from_millis(5)))?;
            let size: libc::c_int = 8 << 20;
            // SAFETY: a valid fd and a pointer to a c_int of the stated length.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    SO_RCVBUFFORCE,
                    &size as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            // As the fan-out generator's subscribers do: a GSO message costs the receiving
            // kernel, which loopback bills to the sender, one datagram's work (`recv_batch`).
            crate::recv_batch::enable_gro(s.as_raw_fd()).context("UDP_GRO on a sink")?;
            match s.local_addr()? {
                SocketAddr::V4(a) => addrs.push(a),
                SocketAddr::V6(_) => bail!("sink bound to IPv6"),
            }
            s.set_nonblocking(true)?;
            sockets.push(s);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let drain = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                if let Some(core) = core {
                    pin_thread(core);
                }
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let mut got = false;
                    for s in &sockets {
                        while s.recv(&mut buf).is_ok() {
                            got = true;
                        }
                    }
                    if !got {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        };
        Ok(Self {
            addrs,
            stop,
            drain: Some(drain),
        })
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
    }
}

fn destinations(addrs: &[SocketAddrV4]) -> Result<Vec<Destination>> {
    let profile = ProtectionProfile::AeadAes128Gcm;
    addrs
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let key: Vec<u8> = (0..profile.key_len()).map(|k| (k + i) as u8).collect();
            let salt: Vec<u8> = (0..profile.salt_len()).map(|k| (k * 7 + i) as u8).collect();
            let sealer = UnboundKey::new(&AES_128_GCM, &key)
                .map_err(|_| anyhow::anyhow!("AES-128 key of the wrong length"))?;
            let mut iv = [0u8; 12];
            iv.copy_from_slice(&salt[..12]);
            Ok(Destination {
                addr: sockaddr(a),
                ctx: Context::new(&key, &salt, profile, None, None)?,
                sealer: LessSafeKey::new(sealer),
                salt: iv,
                ssrc: 0x1000 + i as u32,
                seq: 0,
            })
        })
        .collect()
}

/// Forwards the benchmark stream to `destinations` subscribers for about `duration`, on `core`
/// (sinks drained on `drain_core`), and reports the sending thread's CPU per datagram.
pub fn measure(
    mode: SendMode,
    destinations_n: usize,
    duration: Duration,
    core: Option<usize>,
    drain_core: Option<usize>,
) -> Result<FloorResult> {
    let sinks = Sinks::start(destinations_n.max(1), drain_core)?;
    let addrs = sinks.addrs.clone();
    let worker = std::thread::spawn(move || -> Result<FloorResult> {
        if let Some(core) = core {
            pin_thread(core);
        }
        let mut dests = destinations(&addrs)?;
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let fd = socket.as_raw_fd();
        let bursts = stream();
        let sock_addrs = dests_addrs(&addrs);
        let mut scratch = Vec::with_capacity(1_500);
        let mut batch: Vec<(Bytes, usize)> = Vec::with_capacity(BATCH);
        // The in-place modes' reused buffers: a batch's, or one frame's for GSO.
        let mut slots: Vec<Vec<u8>> = Vec::new();
        let mut filled: Vec<usize> = Vec::with_capacity(BATCH);
        let mut packets = 0u64;
        let started = Instant::now();
        let cpu0 = thread_cpu_micros();
        'outer: loop {
            for burst in &bursts {
                for (d, dest) in dests.iter_mut().enumerate() {
                    match mode {
                        SendMode::ProtectOnly => {
                            for p in &burst.packets {
                                std::hint::black_box(dest.protect(p, &mut scratch)?);
                            }
                        }
                        SendMode::Sendmmsg => {
                            for p in &burst.packets {
                                batch.push((dest.protect(p, &mut scratch)?, d));
                                if batch.len() == BATCH {
                                    send_batch(fd, &batch, &sock_addrs)?;
                                    batch.clear();
                                }
                            }
                        }
                        SendMode::Gso => {
                            let protected: Vec<Bytes> = burst
                                .packets
                                .iter()
                                .map(|p| dest.protect(p, &mut scratch))
                                .collect::<Result<_>>()?;
                            send_gso(fd, &protected, &dest.addr)?;
                        }
                        SendMode::RingSendmmsg => {
                            for p in &burst.packets {
                                let slot = filled.len();
                                if slots.len() == slot {
                                    slots.push(Vec::with_capacity(1_500));
                                }
                                dest.protect_in_place(p, &mut slots[slot])?;
                                filled.push(d);
                                if filled.len() == BATCH {
                                    send_slots(fd, &slots, &filled, &sock_addrs)?;
                                    filled.clear();
                                }
                            }
                        }
                        SendMode::RingGso => {
                            let n = burst.packets.len();
                            if slots.len() < n {
                                slots.resize_with(n, || Vec::with_capacity(1_500));
                            }
                            for (p, slot) in burst.packets.iter().zip(&mut slots) {
                                dest.protect_in_place(p, slot)?;
                            }
                            send_gso(fd, &slots[..n], &dest.addr)?;
                        }
                    }
                    packets += burst.packets.len() as u64;
                }
            }
            if !batch.is_empty() {
                send_batch(fd, &batch, &sock_addrs)?;
                batch.clear();
            }
            if !filled.is_empty() {
                send_slots(fd, &slots, &filled, &sock_addrs)?;
                filled.clear();
            }
            if started.elapsed() >= duration {
                break 'outer;
            }
        }
        Ok(FloorResult {
            mode,
            destinations: dests.len(),
            packets,
            cpu_micros: thread_cpu_micros().saturating_sub(cpu0),
        })
    });
    let result = worker
        .join()
        .map_err(|_| anyhow::anyhow!("floor thread panicked"))?;
    drop(sinks);
    result
}

fn dests_addrs(addrs: &[SocketAddrV4]) -> Vec<libc::sockaddr_in> {
    addrs.iter().map(|&a| sockaddr(a)).collect()
}

/// [`send_batch`] of the first `dests.len()` reused buffers, the k-th to `dests[k]`.
fn send_slots(
    fd: i32,
    slots: &[Vec<u8>],
    dests: &[usize],
    addrs: &[libc::sockaddr_in],
) -> Result<()> {
    let batch: Vec<(&[u8], usize)> = slots
        .iter()
        .zip(dests)
        .map(|(s, &d)| (s.as_slice(), d))
        .collect();
    send_batch(fd, &batch, addrs)
}

/// One `sendmmsg` of up to [`BATCH`] datagrams, each to its own destination.
fn send_batch<B: AsRef<[u8]>>(
    fd: i32,
    batch: &[(B, usize)],
    addrs: &[libc::sockaddr_in],
) -> Result<()> {
    let mut iovs: Vec<libc::iovec> = batch
        .iter()
        .map(|(b, _)| libc::iovec {
            iov_base: b.as_ref().as_ptr() as *mut libc::c_void,
            iov_len: b.as_ref().len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = batch
        .iter()
        .zip(iovs.iter_mut())
        .map(|((_, d), iov)| {
            // SAFETY: an all-zero msghdr is a valid empty message; fields are set below.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = &addrs[*d] as *const _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect();
    let mut sent = 0;
    while sent < msgs.len() {
        // SAFETY: every header points at live iovecs, buffers and addresses for this call.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                msgs[sent..].as_mut_ptr(),
                (msgs.len() - sent) as libc::c_uint,
                0,
            )
        };
        if n <= 0 {
            bail!("sendmmsg: {}", std::io::Error::last_os_error());
        }
        sent += n as usize;
    }
    Ok(())
}

/// Sends a frame's protected packets to one address: one `sendmsg` with `UDP_SEGMENT` per run
/// of equal-size packets (GSO wants equal segments; only the last may be shorter).
pub(crate) fn send_gso<B: AsRef<[u8]>>(
    fd: i32,
    packets: &[B],
    addr: &libc::sockaddr_in,
) -> Result<()> {
    let mut start = 0;
    while start < packets.len() {
        let size = packets[start].as_ref().len();
        let mut end = start + 1;
        while end < packets.len() && end - start < 64 && packets[end].as_ref().len() == size {
            end += 1;
        }
        if end < packets.len() && end - start < 64 && packets[end].as_ref().len() < size {
            end += 1; // a shorter last segment is allowed
        }
        // One iovec per packet: the kernel cuts segments from their concatenation, no copy here.
        let mut iovs: Vec<libc::iovec> = packets[start..end]
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ref().as_ptr() as *mut libc::c_void,
                iov_len: p.as_ref().len(),
            })
            .collect();
        // Room for one cmsg carrying a u16.
        let mut control = [0u8; 64];
        // SAFETY: the header points at live locals; CMSG_* stay inside `control`.
        let rc = unsafe {
            let mut h: libc::msghdr = std::mem::zeroed();
            h.msg_name = addr as *const _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = iovs.as_mut_ptr();
            h.msg_iovlen = iovs.len();
            if end - start > 1 {
                let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
                h.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = space;
                let c = libc::CMSG_FIRSTHDR(&h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, size as u16);
            }
            libc::sendmsg(fd, &h, 0)
        };
        if rc < 0 {
            bail!(
                "sendmsg with UDP_SEGMENT: {}",
                std::io::Error::last_os_error()
            );
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_forwards_and_costs_something() {
        for mode in [
            SendMode::ProtectOnly,
            SendMode::Sendmmsg,
            SendMode::Gso,
            SendMode::RingSendmmsg,
            SendMode::RingGso,
        ] {
            let r = measure(mode, 3, Duration::from_millis(50), None, None).unwrap();
            assert!(r.packets > 0, "{mode:?}");
            assert!(r.micros_per_packet() > 0.0, "{mode:?}");
        }
    }
}
