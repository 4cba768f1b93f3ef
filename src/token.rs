//! `roomcast token`: mints a room access token with the server's `--token-secret`.

use std::time::{Duration, SystemTime};

use clap::Args;
use roomcast_sfu::{DisplayName, Grants, RoomId};
use roomcast_signaling::RoomTokens;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The room the token admits to.
    #[arg(long)]
    pub room: String,

    /// The holder's identity, shown to the others as their name.
    #[arg(long)]
    pub identity: String,

    /// How long the token is valid: e.g. 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// The holder may not publish (a viewer).
    #[arg(long)]
    pub no_publish: bool,

    /// The holder receives no one's media (e.g. a publish-only camera).
    #[arg(long)]
    pub no_subscribe: bool,
}

impl TokenArgs {
    /// The signed token, or why it cannot be made.
    pub fn mint(&self, secret: Option<&str>) -> Result<String, String> {
        let secret =
            secret.ok_or("set --token-secret (or ROOMCAST_TOKEN_SECRET) to mint tokens")?;
        check_secret(secret)?;
        if RoomId::parse(&self.room).is_none() {
            return Err(format!("{:?} is not a valid room id", self.room));
        }
        // The server shows the identity as the name: mint none it would refuse.
        let name = DisplayName::parse(Some(&self.identity));
        if self.identity.trim().is_empty() || name.is_none_or(|n| n.as_str() != self.identity) {
            return Err(format!(
                "{:?} is not a valid identity: 1 to 64 characters, no leading or trailing spaces, \
                 no control, invisible or text-direction characters",
                self.identity
            ));
        }
        let grants = Grants {
            publish: !self.no_publish,
            subscribe: !self.no_subscribe,
        };
        let claims = RoomTokens::claims(
            &self.room,
            &self.identity,
            self.ttl,
            grants,
            SystemTime::now(),
        );
        Ok(RoomTokens::new(secret.as_bytes()).mint(&claims))
    }
}

/// HS256 keys shorter than its 256-bit hash can be brute-forced offline from any one token.
pub const STRONG_SECRET_BYTES: usize = 32;
/// Shorter than this is refused outright.
pub const MIN_SECRET_BYTES: usize = 16;

/// Refuses a token secret too short to protect anything.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "--token-secret is {} bytes: use at least {STRONG_SECRET_BYTES} random bytes \
             (e.g. `openssl rand -base64 32`); under {MIN_SECRET_BYTES} is refused",
            secret.len()
        ));
    }
    Ok(())
}

pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a number and a unit (s, m, h, d), got {s:?}"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    match n.checked_mul(seconds) {
        Some(0) => Err("the lifetime must be positive".into()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err("lifetime too long".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_take_a_unit() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "h", "1w", "0s", "-1h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    const SECRET: &str = "a-test-secret-of-32-bytes-or-so!";

    fn args(identity: &str) -> TokenArgs {
        TokenArgs {
            room: "standup".into(),
            identity: identity.into(),
            ttl: Duration::from_secs(60),
            no_publish: false,
            no_subscribe: false,
        }
    }

    #[test]
    fn identities_the_server_would_refuse_are_not_minted() {
        assert!(args(&"n".repeat(64)).mint(Some(SECRET)).is_ok());
        for bad in [
            "n".repeat(65),
            String::new(),
            " Ada".into(),
            "A\u{202E}da".into(),
            "A\nda".into(),
        ] {
            assert!(args(&bad).mint(Some(SECRET)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        let refused = args("Ada").mint(Some("s3cret")).unwrap_err();
        assert!(refused.contains("at least 32"), "{refused}");
    }

    #[test]
    fn a_minted_token_verifies_with_the_same_secret() {
        let args = TokenArgs {
            room: "standup".into(),
            identity: "Ada".into(),
            ttl: Duration::from_secs(60),
            no_publish: true,
            no_subscribe: false,
        };
        let token = args.mint(Some(SECRET)).unwrap();
        let claims = RoomTokens::new(SECRET.as_bytes())
            .verify(Some(&token), "standup")
            .unwrap();
        assert_eq!(claims.sub, "Ada");
        assert!(!claims.publish && claims.subscribe);
        assert!(args.mint(None).is_err());
    }
}
