//! Connection slots: how many WebSockets the server holds at once, in all and per client address.
//! A slot is taken before any work is done for a connection and held by the connection's task,
//! so concurrent upgrades cannot overshoot the caps and a slot comes back however the task ends.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The caps and who holds what.
#[derive(Debug)]
pub(crate) struct ConnectionSlots {
    total: Arc<Semaphore>,
    per_address: Arc<DashMap<IpAddr, usize>>,
    max_per_address: usize,
}

/// One connection's place, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<DashMap<IpAddr, usize>>,
}

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoSlot {
    ServerFull,
    AddressFull,
}

impl ConnectionSlots {
    pub(crate) fn new(max: usize, max_per_address: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            per_address: Arc::default(),
            max_per_address,
        }
    }

    /// A slot for a connection from `address`, unless either cap is reached.
    pub(crate) fn take(&self, address: IpAddr) -> Result<Slot, NoSlot> {
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| NoSlot::ServerFull)?;
        // The entry holds its shard's lock: check and increment are one step.
        let mut held = self.per_address.entry(address).or_insert(0);
        if *held >= self.max_per_address {
            return Err(NoSlot::AddressFull);
        }
        *held += 1;
        Ok(Slot {
            _permit: permit,
            address,
            per_address: Arc::clone(&self.per_address),
        })
    }

    /// Addresses holding at least one slot.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.per_address.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Entry::Occupied(mut held) = self.per_address.entry(self.address) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn one_address_cannot_take_every_slot() {
        let slots = ConnectionSlots::new(10, 2);
        let _a1 = slots.take(A).unwrap();
        let _a2 = slots.take(A).unwrap();
        assert_eq!(slots.take(A).unwrap_err(), NoSlot::AddressFull);
        assert!(slots.take(B).is_ok(), "another address still gets in");
    }

    #[test]
    fn the_total_is_a_hard_cap() {
        let slots = ConnectionSlots::new(2, 5);
        let _a = slots.take(A).unwrap();
        let _b = slots.take(B).unwrap();
        assert_eq!(slots.take(B).unwrap_err(), NoSlot::ServerFull);
    }

    #[test]
    fn slots_come_back_when_dropped_and_leave_no_entry_behind() {
        let slots = ConnectionSlots::new(1, 1);
        let a = slots.take(A).unwrap();
        assert!(slots.take(A).is_err());
        drop(a);
        assert_eq!(slots.addresses(), 0);
        assert!(slots.take(A).is_ok());
    }

    #[test]
    fn a_refusal_for_the_address_gives_the_total_back() {
        let slots = ConnectionSlots::new(2, 1);
        let _a = slots.take(A).unwrap();
        assert!(slots.take(A).is_err());
        assert!(
            slots.take(B).is_ok(),
            "the refused attempt's permit was returned"
        );
    }
}
