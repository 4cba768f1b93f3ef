//! The STUN/TURN servers handed to each client in `joined`, with TURN credentials minted per
//! participant in coturn's shared-secret mode (the "TURN REST API" scheme), so no long-term TURN
//! password ever reaches a page.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::ids::ParticipantId;
use crate::IceServer;

/// How clients authenticate to the TURN servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TurnAuth {
    /// No credentials (TURN URLs without auth are unusual; STUN needs none).
    #[default]
    None,
    /// Fixed credentials for a TURN server not in shared-secret mode.
    Static { username: String, password: String },
    /// coturn's `use-auth-secret`: per-participant credentials valid for `ttl`.
    Secret { secret: String, ttl: Duration },
}

/// The STUN and TURN servers clients should use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceServers {
    pub stun: Vec<String>,
    pub turn: Vec<String>,
    pub turn_auth: TurnAuth,
}

impl IceServers {
    /// The RTCIceServer list for one participant, as of `now`.
    pub fn for_participant(&self, participant: &ParticipantId, now: SystemTime) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn.is_empty() {
            let (username, credential) = match &self.turn_auth {
                TurnAuth::None => (None, None),
                TurnAuth::Static { username, password } => {
                    (Some(username.clone()), Some(password.clone()))
                }
                TurnAuth::Secret { secret, ttl } => {
                    let (u, c) = ephemeral_credential(secret, participant.as_str(), now + *ttl);
                    (Some(u), Some(c))
                }
            };
            servers.push(IceServer {
                urls: self.turn.clone(),
                username,
                credential,
            });
        }
        servers
    }
}

/// A TURN REST API credential: username `<unix expiry>:<user>`, password
/// base64(HMAC-SHA1(secret, username)).
pub fn ephemeral_credential(secret: &str, user: &str, expires: SystemTime) -> (String, String) {
    let expiry = expires
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let username = format!("{expiry}:{user}");
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn credentials_match_an_independently_computed_vector() {
        // python3: base64(hmac.new(b"north", b"1700086400:p0123456789abcdef", sha1).digest())
        let (user, pass) = ephemeral_credential("north", "p0123456789abcdef", at(1_700_086_400));
        assert_eq!(user, "1700086400:p0123456789abcdef");
        assert_eq!(pass, "VXecAvwdH5H+ze2cgudpuo5Sv8Q=");
    }

    #[test]
    fn each_participant_gets_its_own_credential_expiring_after_the_ttl() {
        let servers = IceServers {
            stun: vec!["stun:stun.example.org:3478".into()],
            turn: vec!["turn:turn.example.org:3478?transport=udp".into()],
            turn_auth: TurnAuth::Secret {
                secret: "north".into(),
                ttl: Duration::from_secs(86_400),
            },
        };
        let (a, b) = (ParticipantId::random(), ParticipantId::random());
        let for_a = servers.for_participant(&a, at(1_700_000_000));
        let for_b = servers.for_participant(&b, at(1_700_000_000));
        assert_eq!(for_a.len(), 2);
        assert_eq!(for_a[0].username, None, "STUN needs no credential");
        let username = for_a[1].username.as_deref().unwrap();
        assert_eq!(username, format!("1700086400:{a}"));
        assert_ne!(for_a[1].credential, for_b[1].credential);
        assert!(
            !format!("{for_a:?}").contains("north"),
            "the secret never leaves the server"
        );
    }

    #[test]
    fn static_credentials_and_no_servers() {
        let servers = IceServers {
            turn: vec!["turn:t:3478".into()],
            turn_auth: TurnAuth::Static {
                username: "u".into(),
                password: "p".into(),
            },
            ..IceServers::default()
        };
        let list = servers.for_participant(&ParticipantId::random(), SystemTime::now());
        assert_eq!(list[0].username.as_deref(), Some("u"));
        assert_eq!(list[0].credential.as_deref(), Some("p"));
        assert!(IceServers::default()
            .for_participant(&ParticipantId::random(), SystemTime::now())
            .is_empty());
    }
}
