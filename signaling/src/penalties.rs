//! Backoff for addresses whose connections were closed as abusive: reconnecting is free for the
//! client but not for the server (each connection costs a handshake, and refusals cost logs), so an
//! address that earned a close waits before it may connect again, twice as long each time.

use std::net::IpAddr;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// How many addresses are remembered before expired entries are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub(crate) struct Penalties {
    first: Duration,
    longest: Duration,
    banned: DashMap<IpAddr, Penalty>,
}

#[derive(Clone, Copy, Debug)]
struct Penalty {
    until: Instant,
    /// The ban the next offence earns.
    next: Duration,
}

impl Penalties {
    pub(crate) fn new(first: Duration, longest: Duration) -> Self {
        Self {
            first,
            longest,
            banned: DashMap::new(),
        }
    }

    /// Records an abusive connection from `address`; returns how long the address is now shut out.
    pub(crate) fn punish(&self, address: IpAddr, now: Instant) -> Duration {
        if self.banned.len() >= SWEEP_AT {
            self.banned.retain(|_, p| !self.forgiven(p, now));
        }
        let mut entry = self.banned.entry(address).or_insert(Penalty {
            until: now,
            next: self.first,
        });
        if self.forgiven(&entry, now) {
            entry.next = self.first;
        }
        let ban = entry.next;
        entry.until = now + ban;
        entry.next = (ban * 2).min(self.longest);
        ban
    }

    /// How much longer `address` is shut out, if it is.
    pub(crate) fn banned_for(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let penalty = self.banned.get(&address)?;
        (penalty.until > now).then(|| penalty.until - now)
    }

    /// An address that stayed out of trouble for the longest ban after its last one starts over.
    fn forgiven(&self, penalty: &Penalty, now: Instant) -> bool {
        now > penalty.until + self.longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_abusive_address_waits_longer_each_time_up_to_the_longest() {
        let p = Penalties::new(S, 4 * S);
        let t0 = Instant::now();
        assert_eq!(p.punish(A, t0), S);
        assert!(p.banned_for(A, t0).is_some());
        assert!(p.banned_for(B, t0).is_none(), "others are not affected");
        assert!(p.banned_for(A, t0 + 2 * S).is_none(), "the ban ends");
        assert_eq!(p.punish(A, t0 + 2 * S), 2 * S);
        assert_eq!(p.punish(A, t0 + 5 * S), 4 * S);
        assert_eq!(p.punish(A, t0 + 10 * S), 4 * S);
    }

    #[test]
    fn a_long_quiet_spell_is_forgiven() {
        let p = Penalties::new(S, 4 * S);
        let t0 = Instant::now();
        p.punish(A, t0);
        p.punish(A, t0 + 2 * S);
        assert_eq!(p.punish(A, t0 + 60 * S), S);
    }
}
