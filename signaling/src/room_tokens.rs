//! Room access tokens: JWTs (HS256) that name a room, an identity, an expiry and what the holder
//! may do there. With a token secret configured, `join` must carry one; the operator's tooling
//! (or `roomcast token`) mints them with the same secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use roomcast_sfu::Grants;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a room token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The one room this token admits to.
    pub room: String,
    /// The holder's identity, shown to the others as their name.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before this, in seconds since the Unix epoch, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default = "yes")]
    pub publish: bool,
    #[serde(default = "yes")]
    pub subscribe: bool,
}

fn yes() -> bool {
    true
}

impl RoomClaims {
    pub fn grants(&self) -> Grants {
        Grants {
            publish: self.publish,
            subscribe: self.subscribe,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("a room token is required to join")]
    Missing,
    #[error("the room token has expired")]
    Expired,
    #[error("the room token is not valid yet")]
    NotYetValid,
    #[error("the room token is for another room")]
    WrongRoom,
    #[error("the room token is not valid: {0}")]
    Invalid(String),
}

/// Mints and checks room tokens with one shared secret.
#[derive(Clone)]
pub struct RoomTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for RoomTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomTokens(<secret>)")
    }
}

impl RoomTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A signed token for `claims`.
    pub fn mint(&self, claims: &RoomClaims) -> String {
        // HS256 signing of a plain struct cannot fail.
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).unwrap_or_default()
    }

    /// Claims for `identity` in `room`, valid for `ttl` from `now`.
    pub fn claims(
        room: &str,
        identity: &str,
        ttl: Duration,
        grants: Grants,
        now: SystemTime,
    ) -> RoomClaims {
        let exp = (now + ttl)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        RoomClaims {
            room: room.to_owned(),
            sub: identity.to_owned(),
            exp,
            nbf: None,
            publish: grants.publish,
            subscribe: grants.subscribe,
        }
    }

    /// The claims of a token that admits to `room` now.
    pub fn verify(&self, token: Option<&str>, room: &str) -> Result<RoomClaims, TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = decode::<RoomClaims>(token, &self.decoding, &validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        if claims.room != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
    }
}

/// Why a token was refused, in our words: the library's own texts name its internals (its
/// error variants, the algorithms it supports).
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    let why = match kind {
        ErrorKind::ExpiredSignature => return TokenError::Expired,
        ErrorKind::ImmatureSignature => return TokenError::NotYetValid,
        ErrorKind::InvalidSignature => "wrong signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "only HS256 is accepted",
        ErrorKind::MissingRequiredClaim(_) => "a claim is missing (room, sub and exp are required)",
        ErrorKind::Json(_) => "its claims are not what a room token holds",
        _ => "malformed",
    };
    TokenError::Invalid(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tokens() -> RoomTokens {
        RoomTokens::new(b"test-secret")
    }

    fn mint(room: &str, ttl: Duration, grants: Grants, now: SystemTime) -> String {
        tokens().mint(&RoomTokens::claims(room, "ada", ttl, grants, now))
    }

    #[test]
    fn a_fresh_token_admits_its_holder_to_its_room_with_its_grants() {
        let viewer = Grants {
            publish: false,
            subscribe: true,
        };
        let token = mint("standup", HOUR, viewer, SystemTime::now());
        let claims = tokens().verify(Some(&token), "standup").unwrap();
        assert_eq!(claims.sub, "ada");
        assert_eq!(claims.grants(), viewer);
    }

    #[test]
    fn another_room_an_expired_token_or_none_at_all_is_refused() {
        let token = mint("standup", HOUR, Grants::ALL, SystemTime::now());
        assert_eq!(
            tokens().verify(Some(&token), "other"),
            Err(TokenError::WrongRoom)
        );
        let old = mint("standup", HOUR, Grants::ALL, SystemTime::now() - 2 * HOUR);
        assert_eq!(
            tokens().verify(Some(&old), "standup"),
            Err(TokenError::Expired)
        );
        assert_eq!(tokens().verify(None, "standup"), Err(TokenError::Missing));
    }

    /// A well-formed token for "standup" signed with another secret.
    fn forged() -> String {
        RoomTokens::new(b"other").mint(&RoomTokens::claims(
            "standup",
            "eve",
            HOUR,
            Grants::ALL,
            SystemTime::now(),
        ))
    }

    #[test]
    fn a_token_signed_with_another_secret_or_tampered_with_is_invalid() {
        let forged = forged();
        assert!(matches!(
            tokens().verify(Some(&forged), "standup"),
            Err(TokenError::Invalid(_))
        ));
        for garbage in ["", "a.b.c", "not a token", "\u{0}"] {
            assert!(matches!(
                tokens().verify(Some(garbage), "standup"),
                Err(TokenError::Invalid(_))
            ));
        }
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let now = SystemTime::now();
        let mut claims = RoomTokens::claims("standup", "ada", 2 * HOUR, Grants::ALL, now);
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        claims.nbf = Some(secs(now + HOUR));
        let early = tokens().mint(&claims);
        assert_eq!(
            tokens().verify(Some(&early), "standup"),
            Err(TokenError::NotYetValid)
        );
        claims.nbf = Some(secs(now));
        assert!(tokens()
            .verify(Some(&tokens().mint(&claims)), "standup")
            .is_ok());
    }

    #[test]
    fn refusals_say_why_in_our_words_not_the_librarys() {
        let forged = forged();
        let why = |token: &str| {
            tokens()
                .verify(Some(token), "standup")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(why(&forged), "the room token is not valid: wrong signature");
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb29tIjoic3RhbmR1cCIsInN1YiI6ImV2ZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
        for token in [none, "a.b.c", "not a token"] {
            let shown = why(token);
            assert!(
                !shown.contains("Kind") && !shown.contains("Invalid") && !shown.contains('('),
                "{shown}"
            );
        }
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // {"alg":"none"} with valid-looking claims and no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb29tIjoic3RhbmR1cCIsInN1YiI6ImV2ZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
        assert!(matches!(
            tokens().verify(Some(none), "standup"),
            Err(TokenError::Invalid(_))
        ));
    }
}
