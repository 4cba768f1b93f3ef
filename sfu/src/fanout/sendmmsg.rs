//! `sendmmsg(2)`: many messages, each to its own IPv4 address, in one system call; a message of
//! several datagrams to one address goes as UDP GSO segments (`UDP_SEGMENT`), so the kernel
//! walks its stack once for all of them.
//!
//! The headers, iovecs, addresses and control buffers the call reads are rebuilt for each batch
//! in vectors kept from batch to batch, so a send allocates nothing once warm. (nix wraps the
//! call too, but ties every slice to the lifetime of its reusable headers and stops at the first
//! failed message; the fan-out needs to skip that one and go on.)

use std::io::ErrorKind;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// The most messages one call takes (the kernel's `UIO_MAXIOV`).
const MAX_PER_CALL: usize = 1024;

/// `UDP_SEGMENT` from linux/udp.h (not in the libc crate for this target).
const UDP_SEGMENT: libc::c_int = 103;

/// Datagrams `first..first + count` of a batch, to one address. With more than one, all but the
/// last are exactly `segment` bytes and the last at most that: what GSO cuts them back into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) to: SocketAddrV4,
    pub(crate) segment: u16,
}

#[derive(Default)]
pub(crate) struct MultiSender {
    scratch: Scratch,
    /// The kernel refused a GSO message once: everything goes one datagram per message since.
    gso_refused: bool,
}

/// One control message carrying a `u16`: `CMSG_SPACE(2)` bytes, aligned as a `cmsghdr`.
type Control = [u64; 3];

#[derive(Default)]
struct Scratch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    addresses: Vec<libc::sockaddr_in>,
    controls: Vec<Control>,
}

// SAFETY: the raw pointers in the scratch vectors point into the datagrams, addresses and control
// buffers of one `send` call and are cleared before it returns; between calls the vectors hold
// only capacity, so moving them to another thread moves no live pointer.
unsafe impl Send for Scratch {}

impl MultiSender {
    /// Whether messages of several datagrams may be sent (until the kernel refuses one).
    pub(crate) fn gso(&self) -> bool {
        !self.gso_refused
    }

    /// Sends each message on `socket` (non-blocking), datagram `k` of the batch being
    /// `datagrams[order[k]]`; calls `failed` with the index of each message that did not leave.
    pub(crate) fn send(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[Vec<u8>],
        order: &[u32],
        messages: &[Message],
        mut failed: impl FnMut(usize),
    ) {
        let s = &mut self.scratch;
        for &i in order {
            let bytes = &datagrams[i as usize];
            s.iovecs.push(libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            });
        }
        for m in messages {
            s.addresses.push(sockaddr(m.to));
            s.controls.push(segment_control(m.segment));
        }
        // The headers point into the vectors above, which no longer grow.
        let iovecs = s.iovecs.as_mut_ptr();
        let parts = messages.iter().zip(&s.addresses).zip(&mut s.controls);
        for ((m, address), control) in parts {
            // SAFETY: an all-zero msghdr is a valid empty message; its fields are set below.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = address as *const libc::sockaddr_in as *mut libc::c_void;
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            // SAFETY: `first + count` never passes the iovecs pushed above, one per datagram.
            header.msg_iov = unsafe { iovecs.add(m.first) };
            header.msg_iovlen = m.count;
            if m.count > 1 {
                header.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                header.msg_controllen = std::mem::size_of::<Control>();
            }
            s.headers.push(libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            });
        }
        let refused = send_all(socket, &mut s.headers, &mut failed);
        if refused.is_some_and(|i| messages[i].count > 1) && !self.gso_refused {
            self.gso_refused = true;
            tracing::warn!(
                "the kernel refused a UDP GSO message: one datagram per message from now on"
            );
        }
        s.headers.clear();
        s.iovecs.clear();
        s.addresses.clear();
        s.controls.clear();
    }
}

/// Sends every header; a message the kernel refuses is reported and skipped. When the socket's
/// buffer is full, the rest of the batch is reported at once: it would not fit either, and trying
/// each would cost a system call apiece on a server that is already behind. Returns the last
/// message refused for itself (not for a full buffer), if any.
fn send_all(
    socket: &UdpSocket,
    headers: &mut [libc::mmsghdr],
    failed: &mut impl FnMut(usize),
) -> Option<usize> {
    let fd = socket.as_raw_fd();
    let mut refused = None;
    let mut at = 0;
    while at < headers.len() {
        let count = (headers.len() - at).min(MAX_PER_CALL);
        // SAFETY: every header from `at` on points at iovecs, datagrams, an address and a control
        // buffer that live until `send` returns; the kernel writes only `msg_len`.
        let sent = unsafe { libc::sendmmsg(fd, headers[at..].as_mut_ptr(), count as u32, 0) };
        if sent > 0 {
            at += sent as usize;
            continue;
        }
        let error = std::io::Error::last_os_error();
        let full =
            error.kind() == ErrorKind::WouldBlock || error.raw_os_error() == Some(libc::ENOBUFS);
        if full {
            (at..headers.len()).for_each(&mut *failed);
            return refused;
        }
        if error.kind() != ErrorKind::Interrupted {
            failed(at);
            refused = Some(at);
            at += 1;
        }
    }
    refused
}

fn sockaddr(to: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The control message that makes a message's datagrams GSO segments of `segment` bytes.
fn segment_control(segment: u16) -> Control {
    let mut control: Control = [0; 3];
    let cmsg = control.as_mut_ptr() as *mut libc::cmsghdr;
    // SAFETY: `control` is 24 bytes aligned for a `cmsghdr` (16 bytes on 64-bit Linux) followed
    // by its data, which `CMSG_SPACE(2)` (24) says is room for one u16.
    unsafe {
        debug_assert!(libc::CMSG_SPACE(2) as usize <= std::mem::size_of::<Control>());
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment);
    }
    control
}
