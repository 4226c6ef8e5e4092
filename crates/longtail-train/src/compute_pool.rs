//! Runs tensor work on a worker of the global rayon pool.
//!
//! The CPU backend (burn-flex) splits each tensor op over rayon's global pool. Issued from a
//! thread outside the pool (a program's main thread), every op is handed to the pool's workers
//! while the caller sleeps until they finish: two futex calls and a context switch or two per
//! op, several hundred ops per training step, and a third thread competing for the cores.
//! Issued from a worker, an op forks in place: the calling thread does its share and the other
//! workers steal the rest. On ResNet-32 (batch 128, 2 cores) a 23-step benchmark took 0.96x
//! the wall time, with context switches down from 30K to 5.5K and system time from 2.0 s to
//! 0.7 s (docs/benchmarks.md). GPU backends are unaffected.
//!
//! [`crate::train`] and [`crate::evaluate_network`] already run this way; a program that
//! drives a model itself gets the same by wrapping its loop in [`run`].

/// Stack size of the pool's workers when this module creates the pool: a main thread's 8 MiB
/// rather than rayon's 2 MiB, since a whole training run executes on one of them.
pub(crate) const WORKER_STACK_BYTES: usize = 8 << 20;

/// Runs `f` on a worker thread of the global rayon pool (on the current thread if that is
/// already a worker of a rayon pool, the global one or another) and returns its result. Panics in `f` propagate to the caller. If the global pool
/// does not exist yet, it is created with rayon's default thread count (`RAYON_NUM_THREADS`,
/// else one per core) and 8 MiB worker stacks; a pool the program built earlier is used as is.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Err only when the global pool already exists; it is then used as it is.
        let _ = rayon::ThreadPoolBuilder::new().stack_size(WORKER_STACK_BYTES).build_global();
    });
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_a_pool_worker_and_returns_the_result() {
        assert!(rayon::current_thread_index().is_none(), "the test harness thread is not a rayon worker");
        let (index, value) = super::run(|| (rayon::current_thread_index(), 6 * 7));
        assert!(index.is_some(), "the closure ran outside the pool");
        assert_eq!(value, 42);
        // Nested calls run inline on the same worker.
        let nested = super::run(|| {
            let outer = rayon::current_thread_index();
            super::run(move || rayon::current_thread_index() == outer)
        });
        assert!(nested);
    }
}
