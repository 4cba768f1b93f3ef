//! The send path roomcast owns for the media it forwards to one subscriber's connection.
//!
//! webrtc-rs keeps ICE, DTLS, SCTP, negotiation and the RTCP it receives; forwarded RTP and its
//! sender reports no longer go through webrtc-rs's track writers, interceptor chain and SRTP
//! session (each with async locks and a fresh buffer per packet). Instead [`Outbound`] holds
//! what a forwarded stream needs to put a packet on the wire itself: the connection's SRTP
//! master key (read from the DTLS handshake once it completes), its transport-wide numbering,
//! and where to write — straight to the shared media socket when the connection runs over it
//! (UDP mux, a host pair), else into webrtc-rs's ICE connection (a TURN relay, or a socket per
//! connection).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::mpsc;

use webrtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use webrtc::dtls_transport::dtls_role::DTLSRole;
use webrtc::dtls_transport::RTCDtlsTransport;
use webrtc::ice_transport::ice_candidate_pair::RTCIceCandidatePair;
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::srtp::config::Config as SrtpConfig;
use webrtc::srtp::protection_profile::ProtectionProfile;
use webrtc::util::Conn;

use super::protect::Protector;
use super::twcc::TransportSequence;

/// The local half of a connection's SRTP master key.
pub(crate) struct SrtpKeys {
    profile: ProtectionProfile,
    key: Vec<u8>,
    salt: Vec<u8>,
}

impl SrtpKeys {
    /// What protects this connection's outgoing RTP. Each forwarded stream has its own: SRTP
    /// state is per SSRC, and every stream sends on an SSRC of its own.
    fn protector(&self) -> Option<Protector> {
        Protector::new(self.profile, &self.key, &self.salt)
    }
}

/// One connection's send state, shared by its forwarded streams.
pub(crate) struct Outbound {
    keys: OnceLock<SrtpKeys>,
    /// Datagrams for webrtc-rs's ICE connection, written by a task of their own: the fan-out
    /// must not wait on its async locks.
    relay: OnceLock<mpsc::Sender<Vec<u8>>>,
    /// The shared media socket (UDP mux), if the server runs one.
    socket: Option<Arc<UdpSocket>>,
    /// Where on that socket the subscriber is reached, packed by [`pack`]; 0 while the selected
    /// pair is not a direct one.
    route: AtomicU64,
    transport: TransportSequence,
    /// The SRTP state of streams that stopped, by SSRC, for the next stream on the same SSRC
    /// (a parked transceiver taken over): the subscriber's SRTP context still knows how often
    /// that SSRC's sequence numbers wrapped, so a fresh one would go undecryptable.
    protectors: Mutex<Vec<(u32, Protector)>>,
}

impl Outbound {
    pub(super) fn new(socket: Option<Arc<UdpSocket>>, transport: TransportSequence) -> Self {
        Self {
            keys: OnceLock::new(),
            relay: OnceLock::new(),
            socket,
            route: AtomicU64::new(0),
            transport,
            protectors: Mutex::new(Vec::new()),
        }
    }

    /// What protects the packets of `ssrc`: the state a stopped stream left for it, else a new
    /// one once DTLS has given the keys.
    pub(crate) fn protector(&self, ssrc: u32) -> Option<Protector> {
        let mut parked = self
            .protectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match parked.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => Some(parked.swap_remove(i).1),
            None => self.keys.get().and_then(SrtpKeys::protector),
        }
    }

    /// Keeps a stopped stream's SRTP state for the next stream on `ssrc`.
    pub(crate) fn park_protector(&self, ssrc: u32, protector: Protector) {
        let mut parked = self
            .protectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        parked.retain(|(s, _)| *s != ssrc);
        parked.push((ssrc, protector));
    }

    /// Starts loading what a packet's send reads here: the route and the transport-wide
    /// numbering (see `fanout::prefetch`).
    pub(crate) fn prefetch(&self) {
        crate::fanout::prefetch::line(&self.route);
        crate::fanout::prefetch::line(&self.transport);
    }

    pub(crate) fn transport(&self) -> &TransportSequence {
        &self.transport
    }

    /// Reads the SRTP keys and the ICE endpoint once DTLS is up. Later calls change nothing: a
    /// connection keeps its DTLS association (an ICE restart does not redo the handshake).
    pub(super) async fn on_connected(&self, dtls: &RTCDtlsTransport) {
        if self.keys.get().is_none() {
            match srtp_keys(dtls).await {
                Some(keys) => {
                    tracing::debug!(profile = ?keys.profile, "SRTP keys for forwarded media");
                    let _ = self.keys.set(keys);
                }
                None => tracing::warn!("no SRTP keys after DTLS: forwarded media cannot be sent"),
            }
        }
        if self.relay.get().is_none() {
            if let Some(endpoint) = dtls.srtp_endpoint().await {
                let (relay, datagrams) = mpsc::channel(RELAY_QUEUE);
                if self.relay.set(relay).is_ok() {
                    tokio::spawn(relay_datagrams(endpoint, datagrams));
                }
            }
        }
    }

    /// Takes up the pair ICE selected: a local host (or server-reflexive) candidate sends from
    /// the shared socket, so packets can go straight to the remote address.
    pub(super) fn on_selected_pair(&self, pair: &RTCIceCandidatePair) {
        let direct = self.socket.is_some()
            && matches!(
                pair.local.typ,
                RTCIceCandidateType::Host | RTCIceCandidateType::Srflx
            );
        let route = match pair.remote.address.parse::<Ipv4Addr>() {
            Ok(ip) if direct => pack(SocketAddrV4::new(ip, pair.remote.port)),
            _ => 0,
        };
        self.route.store(route, Ordering::Relaxed);
    }

    /// Where a protected packet goes now.
    pub(crate) fn route(&self) -> Route<'_> {
        if let (Some(socket), Some(to)) = (&self.socket, unpack(self.route.load(Ordering::Relaxed)))
        {
            return Route::Direct(socket, to);
        }
        match self.relay.get() {
            Some(_) => Route::Relayed,
            None => Route::Nowhere,
        }
    }

    /// Hands a protected packet to webrtc-rs's ICE connection; false if it cannot take it now
    /// (a full queue is a congested relay: the packet is dropped, as on the path itself).
    pub(crate) fn send_relayed(&self, datagram: Vec<u8>) -> bool {
        self.relay
            .get()
            .is_some_and(|relay| relay.try_send(datagram).is_ok())
    }
}

/// Where a connection's protected packets go.
pub(crate) enum Route<'a> {
    /// Straight to the subscriber's address on the shared media socket.
    Direct(&'a Arc<UdpSocket>, SocketAddrV4),
    /// Through webrtc-rs's ICE connection: a TURN relay, or a socket per connection.
    Relayed,
    /// Nowhere yet: DTLS is not up.
    Nowhere,
}

/// Packets waiting for a relayed connection: under a second of 1.5 Mbit/s video.
const RELAY_QUEUE: usize = 128;

async fn relay_datagrams(
    endpoint: Arc<dyn Conn + Send + Sync>,
    mut datagrams: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(datagram) = datagrams.recv().await {
        if endpoint.send(&datagram).await.is_err() {
            tracing::trace!("relayed packet not sent");
        }
    }
}

async fn srtp_keys(dtls: &RTCDtlsTransport) -> Option<SrtpKeys> {
    let conn = dtls.conn().await?;
    let profile = match conn.selected_srtpprotection_profile() {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => ProtectionProfile::AeadAes256Gcm,
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            ProtectionProfile::Aes128CmHmacSha1_80
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
            ProtectionProfile::Aes128CmHmacSha1_32
        }
        _ => return None,
    };
    let mut config = SrtpConfig {
        profile,
        ..Default::default()
    };
    let is_client = dtls.role().await == DTLSRole::Client;
    config
        .extract_session_keys_from_dtls(conn.connection_state().await, is_client)
        .await
        .ok()?;
    Some(SrtpKeys {
        profile,
        key: config.keys.local_master_key,
        salt: config.keys.local_master_salt,
    })
}

/// An IPv4 socket address in 49 bits, with bit 48 set so that no address packs to 0.
fn pack(addr: SocketAddrV4) -> u64 {
    1 << 48 | u64::from(u32::from(*addr.ip())) << 16 | u64::from(addr.port())
}

fn unpack(packed: u64) -> Option<SocketAddrV4> {
    (packed != 0).then(|| SocketAddrV4::new(Ipv4Addr::from((packed >> 16) as u32), packed as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_packs_and_unpacks_and_no_address_packs_to_nothing() {
        for addr in [
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 50_000),
            SocketAddrV4::new(Ipv4Addr::BROADCAST, u16::MAX),
        ] {
            assert_ne!(pack(addr), 0);
            assert_eq!(unpack(pack(addr)), Some(addr));
        }
        assert_eq!(unpack(0), None);
    }
}
