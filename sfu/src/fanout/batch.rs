//! The datagrams one fan-out step puts on the wire, written in place into reusable buffers and
//! sent with one `sendmmsg` per batch instead of one `sendto` per subscriber. A step that takes
//! several packets (a burst: a keyframe arrives as dozens at once) has several datagrams for
//! each subscriber: those go to it as one GSO message where their sizes allow (equal, the last
//! one at most as long), so the kernel walks its stack and wakes the receiver once for them.
//!
//! A datagram that could not leave (the socket's buffer full, an unreachable address) is handed
//! back with its tag, so that its stream can take back its transport-wide number: the
//! subscriber's feedback must not count a packet that never left as lost on the path.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::Arc;

use crate::peer::Stamp;

use super::sendmmsg::{Message, MultiSender};

/// GSO segments per message at most (the kernel's `UDP_MAX_SEGMENTS` is 64 on older kernels).
const MAX_SEGMENTS: usize = 64;

/// Bytes per GSO message at most: one IPv4 datagram's payload, with room to spare.
const MAX_GSO_BYTES: usize = 60_000;

/// Datagrams waiting for [`Batch::flush`].
#[derive(Default)]
pub(crate) struct Batch {
    socket: Option<Arc<UdpSocket>>,
    /// Buffers for datagrams; the first `queued.len()` hold the datagrams of this batch, the rest
    /// are kept for the next ones (capacity stays, so no step allocates once warm).
    buffers: Vec<Vec<u8>>,
    queued: Vec<Queued>,
    /// The send order (datagram indices, each subscriber's together) and its messages.
    order: Vec<u32>,
    messages: Vec<Message>,
    failed: Vec<Failed>,
    sender: MultiSender,
}

/// Where a queued datagram goes, and whose it is.
struct Queued {
    to: SocketAddrV4,
    failure: Failed,
}

/// A datagram that did not leave: the tag its writer gave it, and its transport-wide number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) tag: u32,
    pub(crate) stamp: Option<Stamp>,
}

impl Batch {
    /// The buffer for the next datagram, empty. It joins the batch with [`Batch::commit`]; a
    /// buffer not committed is simply reused.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        let next = self.queued.len();
        if self.buffers.len() == next {
            self.buffers.push(Vec::with_capacity(1500));
        }
        let buffer = &mut self.buffers[next];
        buffer.clear();
        buffer
    }

    /// Takes the buffer last given by [`Batch::buffer`] out of the batch, for a datagram that
    /// leaves another way (through webrtc-rs's ICE connection).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let next = self.queued.len();
        std::mem::take(&mut self.buffers[next])
    }

    /// Queues the datagram written into the last [`Batch::buffer`] for `to` on `socket`.
    pub(crate) fn commit(
        &mut self,
        socket: &Arc<UdpSocket>,
        to: SocketAddrV4,
        tag: u32,
        stamp: Option<Stamp>,
    ) {
        if self.socket.is_none() {
            self.socket = Some(Arc::clone(socket));
        }
        debug_assert!(self.socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, socket)));
        self.queued.push(Queued {
            to,
            failure: Failed { tag, stamp },
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Datagrams queued.
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }

    /// Sends every queued datagram; returns those that did not leave.
    pub(crate) fn flush(&mut self) -> &[Failed] {
        self.failed.clear();
        if let Some(socket) = self.socket.clone().filter(|_| !self.queued.is_empty()) {
            self.plan();
            let (failed, queued, order, messages) =
                (&mut self.failed, &self.queued, &self.order, &self.messages);
            self.sender
                .send(&socket, &self.buffers, order, messages, |m| {
                    let Message { first, count, .. } = messages[m];
                    let datagrams = order[first..first + count].iter();
                    failed.extend(datagrams.map(|&i| queued[i as usize].failure));
                });
        }
        self.queued.clear();
        &self.failed
    }

    /// Orders the datagrams by subscriber (keeping each one's in sequence) and cuts them into
    /// messages: a run of one subscriber's datagrams of one size, ended by a shorter one, is one
    /// GSO message.
    fn plan(&mut self) {
        let gso = self.sender.gso();
        let queued = &self.queued;
        self.order.clear();
        self.order.extend(0..queued.len() as u32);
        if gso {
            self.order.sort_by_key(|&i| queued[i as usize].failure.tag);
        }
        self.messages.clear();
        let mut open = false;
        let mut bytes = 0;
        for (k, &i) in self.order.iter().enumerate() {
            let q = &queued[i as usize];
            let len = self.buffers[i as usize].len();
            if let Some(m) = self.messages.last_mut().filter(|_| gso && open) {
                let same = queued[self.order[m.first] as usize].failure.tag == q.failure.tag;
                if same
                    && m.count < MAX_SEGMENTS
                    && len <= usize::from(m.segment)
                    && bytes + len <= MAX_GSO_BYTES
                {
                    m.count += 1;
                    bytes += len;
                    open = len == usize::from(m.segment);
                    continue;
                }
            }
            self.messages.push(Message {
                first: k,
                count: 1,
                to: q.to,
                segment: len as u16,
            });
            open = true;
            bytes = len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn receiver() -> (UdpSocket, SocketAddrV4) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let std::net::SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        (socket, addr)
    }

    fn sender() -> Arc<UdpSocket> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        Arc::new(socket)
    }

    fn queue(batch: &mut Batch, socket: &Arc<UdpSocket>, bytes: &[u8], to: SocketAddrV4, tag: u32) {
        batch.buffer().extend_from_slice(bytes);
        batch.commit(socket, to, tag, None);
    }

    fn read(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn every_datagram_of_a_batch_reaches_its_own_address() {
        let (a, a_addr) = receiver();
        let (b, b_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        queue(&mut batch, &socket, b"to a", a_addr, 0);
        queue(&mut batch, &socket, b"to b", b_addr, 1);
        queue(&mut batch, &socket, b"a again", a_addr, 2);
        assert!(batch.flush().is_empty());
        assert!(batch.is_empty());
        assert_eq!(read(&a), b"to a");
        assert_eq!(read(&a), b"a again");
        assert_eq!(read(&b), b"to b");
    }

    #[test]
    fn buffers_are_reused_from_batch_to_batch() {
        let (a, a_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        queue(&mut batch, &socket, &[7; 1200], a_addr, 0);
        batch.flush();
        queue(&mut batch, &socket, b"short", a_addr, 0);
        batch.flush();
        assert_eq!(read(&a).len(), 1200);
        assert_eq!(read(&a), b"short", "nothing of the longer datagram is left");
        assert_eq!(batch.buffers.len(), 1);
    }

    #[test]
    fn a_datagram_that_cannot_leave_is_handed_back_and_the_others_still_go() {
        let (a, a_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        // Port 0 is not a destination: the kernel refuses that one datagram.
        let nowhere = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        queue(&mut batch, &socket, b"first", a_addr, 10);
        queue(&mut batch, &socket, b"lost", nowhere, 11);
        queue(&mut batch, &socket, b"third", a_addr, 12);
        let failed: Vec<u32> = batch.flush().iter().map(|f| f.tag).collect();
        assert_eq!(failed, [11]);
        assert_eq!(read(&a), b"first");
        assert_eq!(read(&a), b"third");
    }

    fn sizes_of_messages(batch: &mut Batch) -> Vec<Vec<usize>> {
        batch.plan();
        batch
            .messages
            .iter()
            .map(|m| {
                let order = &batch.order[m.first..m.first + m.count];
                order
                    .iter()
                    .map(|&i| batch.buffers[i as usize].len())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_subscribers_datagrams_of_one_size_go_as_one_message_ended_by_a_shorter_one() {
        let (_a, a_addr) = receiver();
        let (_b, b_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        // Two packets of a burst, fanned out to subscribers 0 and 1 in turn, then two more.
        for len in [1200, 1200, 1200, 1200, 700, 700, 1200, 900] {
            let (to, tag) = if batch.len() % 2 == 0 {
                (a_addr, 0)
            } else {
                (b_addr, 1)
            };
            queue(&mut batch, &socket, &vec![1; len], to, tag);
        }
        assert_eq!(
            sizes_of_messages(&mut batch),
            [
                vec![1200, 1200, 700],
                vec![1200],
                vec![1200, 1200, 700],
                vec![900]
            ],
            "a shorter datagram ends its run; a longer one starts a new message"
        );
    }

    #[test]
    fn a_gso_message_arrives_as_separate_datagrams_in_order() {
        let (a, a_addr) = receiver();
        let (b, b_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        for (n, len) in [1000, 1000, 1000, 400].into_iter().enumerate() {
            queue(&mut batch, &socket, &vec![n as u8; len], a_addr, 0);
            queue(&mut batch, &socket, &[9; 30], b_addr, 1);
        }
        assert!(batch.flush().is_empty());
        for (n, len) in [1000, 1000, 1000, 400].into_iter().enumerate() {
            assert_eq!(read(&a), vec![n as u8; len]);
            assert_eq!(read(&b), [9; 30]);
        }
    }

    #[test]
    fn a_message_that_cannot_leave_hands_back_every_datagram_in_it() {
        let socket = sender();
        let mut batch = Batch::default();
        let nowhere = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        queue(&mut batch, &socket, &[1; 500], nowhere, 4);
        queue(&mut batch, &socket, &[1; 500], nowhere, 4);
        let failed: Vec<u32> = batch.flush().iter().map(|f| f.tag).collect();
        assert_eq!(failed, [4, 4]);
    }

    #[test]
    fn a_taken_buffer_leaves_the_batch_and_is_replaced() {
        let (a, a_addr) = receiver();
        let socket = sender();
        let mut batch = Batch::default();
        batch.buffer().extend_from_slice(b"relayed");
        assert_eq!(batch.take(), b"relayed");
        assert!(batch.is_empty());
        queue(&mut batch, &socket, b"direct", a_addr, 0);
        batch.flush();
        assert_eq!(read(&a), b"direct");
    }
}
