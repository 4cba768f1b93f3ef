//! Reading up to [`CAPACITY`] datagrams from a socket with one `recvmmsg` call, into buffers
//! reused from call to call.
//!
//! The sampling subscribers' reader ([`crate::socket_reader`]) reads every forwarded datagram of
//! every subscriber on one core: one system call per ready socket rather than one per datagram
//! (and no empty read to learn that the socket is drained) is most of what it saves.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams one call reads at most. A subscriber gets a video frame's few packets at a time,
/// so more would rarely be filled.
pub const CAPACITY: usize = 32;
/// Each datagram's buffer: webrtc-ice's own receive buffer (`RECEIVE_MTU`), so nothing it would
/// have read whole is cut short here.
const SLOT: usize = 8192;

/// Buffers for [`CAPACITY`] datagrams and their senders' addresses, and what the last call read.
pub struct RecvBatch {
    data: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
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
        for i in 0..CAPACITY {
            // SAFETY: `i * SLOT` is inside `data`, which holds CAPACITY * SLOT bytes.
            self.iovecs[i].iov_base = unsafe { data.add(i * SLOT) }.cast();
            self.iovecs[i].iov_len = SLOT;
            let h = &mut self.headers[i];
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
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
    /// cannot express).
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if i >= self.len {
            return None;
        }
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(SLOT);
        let data = &self.data[i * SLOT..i * SLOT + len];
        Some((data, socket_addr(&self.names[i], h.msg_hdr.msg_namelen)))
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
mod tests {
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
}
