//! Asking the CPU to start loading a writer's state a few writers before the fan-out gets to it.
//!
//! A fan-out step runs every writer of a publication in turn, and each writer's state — its own
//! struct, its subscription's shared flags and statistics, its track's binding and connection,
//! its SRTP key — sits in memory no other writer touches. With hundreds of subscribers all of it
//! has left the cache by the next packet (the kernel's send path in between evicts the rest), so
//! the profile of a 500-subscriber fan-out showed the writers' time on single loads: the first
//! touch of each of those lines. The state is a chain of pointers (writer → track → connection
//! → transport-wide numbering → its history slot), so the fan-out fetches it in stages
//! ([`super::Stage`]): a writer's own lines five writers ahead, what they point at four ahead,
//! and so on down the chain to the next history slot one writer ahead; each stage reads only
//! pointers an earlier stage has fetched, so the prefetching itself rarely waits.
//!
//! Measured (docs/benchmarks.md, "Fetching ahead"): −14 % server CPU per forwarded packet at
//! 500 subscribers, −4 % at 100, where more of the state stays in the cache anyway.
//!
//! A prefetch is a hint: it never faults, whatever the address, and changes no result.

/// Bytes the CPU loads at a time.
const LINE: usize = 64;

/// Starts loading the line holding `p`.
#[inline(always)]
pub(crate) fn line<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault, whatever `p` is.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading every line of `value`.
#[inline(always)]
pub(crate) fn lines<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    for offset in (0..std::mem::size_of_val(value)).step_by(LINE) {
        line(start.wrapping_add(offset));
    }
}
