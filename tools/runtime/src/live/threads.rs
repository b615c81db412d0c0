//! Starting the pipeline's threads: each is named `rm-<role>`, pins itself (and, for the
//! engine, switches to `SCHED_FIFO`) before touching a ring, reports how that went, and waits
//! until every thread has done the same. If any setup failed, every thread leaves at once and
//! the run fails with the reasons; otherwise all start together. (A failure to spawn a thread
//! at all is fatal for the process: the threads already waiting are never released.)

use super::pinning::{self, PinPlan, Role};
use super::shared::Shared;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;

/// The start-up handshake of one run (used before the hot loops start, never after).
#[derive(Debug)]
pub struct Startup {
    plan: PinPlan,
    /// Phase 1: every thread has reported. Phase 2: the coordinator has decided.
    barrier: Barrier,
    reports: Mutex<Vec<(String, Result<(), String>)>>,
    shared: Arc<Shared>,
}

impl Startup {
    /// A handshake for `threads` threads plus the coordinator.
    pub fn new(plan: PinPlan, threads: usize, shared: Arc<Shared>) -> Arc<Startup> {
        Arc::new(Startup {
            plan,
            barrier: Barrier::new(threads + 1),
            reports: Mutex::new(Vec::new()),
            shared,
        })
    }

    /// In a new thread: set it up for `role`, report, wait for the go. False: leave now.
    fn enter(&self, name: &str, role: Role) -> bool {
        let r = pinning::apply(&self.plan, role);
        if let Ok(mut v) = self.reports.lock() {
            v.push((name.to_string(), r));
        }
        self.barrier.wait();
        self.barrier.wait();
        !self.shared.abort.load(Ordering::Acquire)
    }

    /// In the coordinator, once every thread is spawned: collect the reports, decide, release
    /// the threads. Errors name each thread whose setup failed.
    pub fn release(&self) -> Result<(), String> {
        self.barrier.wait();
        let failures: Vec<String> = self
            .reports
            .lock()
            .map(|v| {
                v.iter()
                    .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
                    .collect()
            })
            .unwrap_or_default();
        if !failures.is_empty() {
            self.shared.abort.store(true, Ordering::Release);
        }
        self.barrier.wait();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

/// Spawns `rm-<name>`, which sets itself up for `role` and then runs `body(go)`; `go` is false
/// when the run was aborted during start-up (the body should return at once).
pub fn spawn<T: Send + 'static>(
    name: &'static str,
    role: Role,
    startup: &Arc<Startup>,
    body: impl FnOnce(bool) -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    let startup = Arc::clone(startup);
    std::thread::Builder::new()
        .name(format!("rm-{name}"))
        .spawn(move || {
            let go = startup.enter(name, role);
            // A panic is a bug; still, the other threads must not wait for this one forever:
            // they see `abort` and wind down (the coordinator then reports the panic).
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(go))) {
                Ok(v) => v,
                Err(p) => {
                    startup.shared.abort.store(true, Ordering::Release);
                    std::panic::resume_unwind(p)
                }
            }
        })
}
