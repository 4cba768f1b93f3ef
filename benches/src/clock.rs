//! One clock for senders and receivers: microseconds since the process's first use of it.
//!
//! Publishers and subscribers live in the same process, so a monotonic clock read on both ends
//! gives one-way latency without clock synchronisation.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the epoch of this process's clock.
pub fn now_micros() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_micros() as u64
}

/// CPU time this thread has used, in microseconds (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward() {
        let a = now_micros();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now_micros() >= a + 2_000);
    }

    #[test]
    fn thread_cpu_time_grows_with_work() {
        let a = thread_cpu_micros();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_micros() > a);
    }
}
