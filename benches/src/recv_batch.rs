//! Reading up to [`CAPACITY`] datagrams from a socket with one `recvmmsg` call, into buffers
//! reused from call to call.
//!
//! The sampling subscribers' reader ([`crate::socket_reader`]) reads every forwarded datagram of
//! every subscriber on one core: one system call per ready socket rather than one per datagram
//! (and no empty read to learn that the socket is drained) is most of what it saves.
//!
//! A socket read here can take UDP GSO messages whole ([`enable_gro`]): a server that sends a
//! subscriber's packets of a burst as one GSO message then costs the receiving kernel one
//! datagram's work, not one per packet, and [`RecvBatch::get`] says where the packets in it
//! are cut. On loopback the receiving kernel's work is charged to the *sender* (the server),
//! so without it a benchmark bills the server for per-packet receive work that, across a real
//! network, another machine does.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams one call reads at most. A subscriber gets a video frame's few packets at a time,
/// so more would rarely be filled.
pub const CAPACITY: usize = 32;
/// Each message's buffer: the largest UDP payload, so a GSO message taken whole
/// ([`enable_gro`]) is never cut short.
const SLOT: usize = 65_536;
/// Control bytes per message: room for one `UDP_GRO` message (a `cmsghdr` and an `int`), as
/// `u64`s so the buffer is aligned as a `cmsghdr` must be.
const CONTROL_WORDS: usize = 8;
/// `UDP_GRO` from linux/udp.h (not in the libc crate for this target): as a socket option,
/// take GSO messages whole; as a control message, their segment size.
const UDP_GRO: libc::c_int = 104;

/// Makes `fd` take a UDP GSO message as one datagram (with its segment size) instead of the
/// kernel cutting it into one datagram per segment first. Linux 5.0 and later; an error means
/// the kernel cuts them, which [`RecvBatch`] reads just as well.
pub fn enable_gro(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a pointer to a live c_int and its length; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_GRO,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Buffers for [`CAPACITY`] datagrams and their senders' addresses, and what the last call read.
pub struct RecvBatch {
    data: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<u64>,
    /// The kernel's headers, rebuilt before each call: they point into `data` and `names`.
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// Datagrams the last call read.
    len: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) address.
        let name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let iovec = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: an all-zero mmsghdr is a valid empty message.
        let header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        Self {
            data: vec![0; CAPACITY * SLOT],
            names: vec![name; CAPACITY],
            controls: vec![0; CAPACITY * CONTROL_WORDS],
            iovecs: vec![iovec; CAPACITY],
            headers: vec![header; CAPACITY],
            len: 0,
        }
    }

    /// Reads what `fd` has queued, up to [`CAPACITY`] datagrams, without waiting; how many.
    /// Fewer than [`CAPACITY`] means the queue was empty when the call returned. `WouldBlock`
    /// when nothing was queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.len = 0;
        let data = self.data.as_mut_ptr();
        let controls = self.controls.as_mut_ptr();
        for i in 0..CAPACITY {
            // SAFETY: `i * SLOT` is inside `data`, which holds CAPACITY * SLOT bytes.
            self.iovecs[i].iov_base = unsafe { data.add(i * SLOT) }.cast();
            self.iovecs[i].iov_len = SLOT;
            let h = &mut self.headers[i];
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            // SAFETY: `i * CONTROL_WORDS` is inside `controls`, which holds that many per message.
            h.msg_hdr.msg_control = unsafe { controls.add(i * CONTROL_WORDS) }.cast();
            h.msg_hdr.msg_controllen = (CONTROL_WORDS * 8) as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: each header points at its own live iovec, buffer slot and address, all owned
        // by `self` and not moved during the call; a null timeout does not wait.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                CAPACITY as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = (n as usize).min(CAPACITY);
        Ok(self.len)
    }

    /// Datagrams the last call read.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Datagram `i` of the last call and who sent it (`None` for an address family this
    /// cannot express). A GSO message taken whole is one datagram here: see [`Self::segment`].
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if i >= self.len {
            return None;
        }
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(SLOT);
        let data = &self.data[i * SLOT..i * SLOT + len];
        Some((data, socket_addr(&self.names[i], h.msg_hdr.msg_namelen)))
    }

    /// The packets datagram `i` of the last call holds: itself, or, for a GSO message taken
    /// whole, its segments (all of the segment size but the last, which may be shorter).
    pub fn packets(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let (data, _) = self.get(i).unwrap_or((&[], None));
        let segment = self.segment(i).unwrap_or(data.len()).max(1);
        data.chunks(segment)
    }

    /// The segment size of datagram `i` if it is a GSO message taken whole.
    fn segment(&self, i: usize) -> Option<usize> {
        let h = &self.headers[i].msg_hdr;
        // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control messages into
        // the buffer `msg_control` points at (ours, alive and unmoved); CMSG_* only walk them.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let size = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    return usize::try_from(size).ok().filter(|&s| s > 0);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }
}

/// The address the kernel wrote into `name` (`len` bytes of it).
pub fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(name.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says a sockaddr_in is stored, and sockaddr_storage is large and
            // aligned enough for any address.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn storage<T>(addr: T) -> libc::sockaddr_storage {
        // SAFETY: all-zero is a valid sockaddr_storage; T is a sockaddr type no larger than it.
        unsafe {
            let mut s: libc::sockaddr_storage = std::mem::zeroed();
            std::ptr::write((&mut s as *mut libc::sockaddr_storage).cast::<T>(), addr);
            s
        }
    }

    #[test]
    fn addresses_of_both_families_are_read_and_others_refused() {
        let v4 = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 5004u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(127, 0, 0, 1)).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len4 = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            socket_addr(&storage(v4), len4),
            Some("127.0.0.1:5004".parse().unwrap())
        );
        assert_eq!(socket_addr(&storage(v4), len4 - 1), None, "cut short");

        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut v6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        v6.sin6_port = 443u16.to_be();
        v6.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        let len6 = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        assert_eq!(
            socket_addr(&storage(v6), len6),
            Some("[::1]:443".parse().unwrap())
        );

        // SAFETY: all-zero is a valid sockaddr_storage (AF_UNSPEC).
        let unspec: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        assert_eq!(socket_addr(&unspec, len6), None);
    }

    #[test]
    fn a_call_reads_at_most_a_batch_and_the_rest_on_the_next() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::new();
        let empty = batch.recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert!(batch.is_empty());
        for i in 0..CAPACITY + 3 {
            tx.send_to(&vec![i as u8; 100 + i], rx.local_addr().unwrap())
                .unwrap();
        }
        // Loopback delivers within the send; the pause only makes sure.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), CAPACITY);
        let (d, from) = batch.get(7).unwrap();
        assert_eq!((d.len(), d[0]), (107, 7));
        assert_eq!(from, Some(tx.local_addr().unwrap()));
        assert!(batch.get(CAPACITY).is_none());
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 3);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.get(2).map(|(d, _)| d[0]), Some(CAPACITY as u8 + 2));
        assert!(batch.get(3).is_none());
    }

    /// Sends `packets` (equal sizes, the last one at most as long) as one UDP GSO message, as
    /// the floor does.
    pub(crate) fn send_gso(tx: &UdpSocket, packets: &[Vec<u8>], to: SocketAddr) {
        let SocketAddr::V4(to) = to else {
            panic!("IPv4 only")
        };
        crate::floor::send_gso(tx.as_raw_fd(), packets, &crate::floor::sockaddr(to)).unwrap();
    }

    #[test]
    fn a_gso_message_is_taken_whole_and_cut_where_its_packets_end() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_gro(rx.as_raw_fd()).unwrap();
        let frame: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 300 } else { 1_200 }])
            .collect();
        send_gso(&tx, &frame, rx.local_addr().unwrap());
        tx.send_to(&[9; 50], rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));

        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 2, "the message whole");
        assert_eq!(batch.get(0).unwrap().0.len(), 4 * 1_200 + 300);
        let cut: Vec<&[u8]> = batch.packets(0).collect();
        assert_eq!(cut, frame.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let plain: Vec<&[u8]> = batch.packets(1).collect();
        assert_eq!(
            plain,
            vec![&[9u8; 50][..]],
            "a plain datagram is one packet"
        );
        assert_eq!(batch.packets(2).count(), 0, "past the batch");
    }

    #[test]
    fn without_gro_the_kernel_cuts_a_gso_message_and_each_piece_is_one_packet() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let frame: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1_000]).collect();
        send_gso(&tx, &frame, rx.local_addr().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(rx.as_raw_fd()).unwrap(), 3);
        for (i, packet) in frame.iter().enumerate() {
            assert_eq!(batch.packets(i).collect::<Vec<_>>(), vec![&packet[..]]);
        }
    }
}
