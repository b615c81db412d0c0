//! Which core each thread runs on: a plan made from `[cpu]` and the cores this process may use,
//! checked before any thread starts, then applied by each thread to itself.
//!
//! A configured core the machine does not offer (CI and small hosts have 2 cores; the reference
//! layout wants 0, 2, 3, 4) leaves that thread unpinned with a warning, as does the engine
//! sharing a core with another hot thread. With `strict_pinning = true` every such warning is an
//! error instead and nothing starts.

use super::config::CpuConfig;
use super::sys;

/// A thread of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The engine thread (busy-spins on the input ring).
    Engine,
    /// The feed thread.
    Feed,
    /// The gateway thread.
    Gateway,
    /// Housekeeping and the timer source.
    Housekeeping,
}

impl Role {
    /// The name used in messages and as the thread name suffix.
    pub fn name(self) -> &'static str {
        match self {
            Role::Engine => "engine",
            Role::Feed => "feed",
            Role::Gateway => "gateway",
            Role::Housekeeping => "housekeeping",
        }
    }
}

/// Where each role runs and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPlan {
    /// Engine core (`None`: unpinned).
    pub engine: Option<usize>,
    /// Feed core.
    pub feed: Option<usize>,
    /// Gateway core.
    pub gateway: Option<usize>,
    /// Housekeeping and timer core.
    pub housekeeping: Option<usize>,
    /// `SCHED_FIFO` priority for the engine thread, if asked for.
    pub engine_fifo: Option<i32>,
    /// What could not be honoured (printed as warnings).
    pub warnings: Vec<String>,
    /// The cores this process may run on.
    pub available: Vec<usize>,
}

/// The plan cannot be honoured and `strict_pinning = true`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("strict_pinning: {}; fix [cpu] for this machine or set strict_pinning = false", .0.join("; "))]
pub struct StrictPinningError(pub Vec<String>);

impl PinPlan {
    /// The core for `role`.
    pub fn core(&self, role: Role) -> Option<usize> {
        match role {
            Role::Engine => self.engine,
            Role::Feed => self.feed,
            Role::Gateway => self.gateway,
            Role::Housekeeping => self.housekeeping,
        }
    }

    /// One line per role, for the start-up banner.
    pub fn describe(&self) -> String {
        [Role::Engine, Role::Feed, Role::Gateway, Role::Housekeeping]
            .iter()
            .map(|&r| match self.core(r) {
                Some(c) => format!("{}@{c}", r.name()),
                None => format!("{}@unpinned", r.name()),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Makes the plan for `cpu` on a machine offering `available` cores.
pub fn plan(cpu: &CpuConfig, available: &[usize]) -> Result<PinPlan, StrictPinningError> {
    let mut warnings = Vec::new();
    let mut place = |role: Role, want: Option<usize>| -> Option<usize> {
        let c = want?;
        if available.contains(&c) {
            Some(c)
        } else {
            let what = format!(
                "[cpu] {} = {c}: not one of this machine's cores {available:?}",
                role.name()
            );
            warnings.push(if cpu.strict_pinning {
                what
            } else {
                format!("{what}; the {} thread runs unpinned", role.name())
            });
            None
        }
    };
    let engine = place(Role::Engine, cpu.engine);
    let feed = place(Role::Feed, cpu.feeds.first().copied());
    let gateway = place(Role::Gateway, cpu.gateway);
    let housekeeping = place(Role::Housekeeping, cpu.housekeeping);
    if let Some(e) = engine {
        for (role, c) in [
            (Role::Feed, feed),
            (Role::Gateway, gateway),
            (Role::Housekeeping, housekeeping),
        ] {
            if c == Some(e) {
                warnings.push(format!(
                    "the engine shares core {e} with the {} thread: its busy-spin will compete",
                    role.name()
                ));
            }
        }
    }
    let mut wanted: Vec<usize> = [cpu.engine, cpu.gateway, cpu.housekeeping]
        .into_iter()
        .flatten()
        .chain(cpu.feeds.first().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.len() > available.len() {
        warnings.push(format!(
            "[cpu] asks for {} distinct cores, this machine offers {}",
            wanted.len(),
            available.len()
        ));
    }
    if cpu.sched_fifo && engine.is_none() {
        warnings.push(
            "sched_fifo with an unpinned engine thread: a spinning SCHED_FIFO thread may starve \
             the others"
                .to_string(),
        );
    }
    if cpu.strict_pinning && !warnings.is_empty() {
        return Err(StrictPinningError(warnings));
    }
    Ok(PinPlan {
        engine,
        feed,
        gateway,
        housekeeping,
        engine_fifo: cpu.sched_fifo.then_some(cpu.sched_priority),
        warnings,
        available: available.to_vec(),
    })
}

/// The cores this process may run on (its affinity mask; call before pinning anything).
pub fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Applies the plan for `role` to the calling thread: pin, then (engine) `SCHED_FIFO`.
pub fn apply(plan: &PinPlan, role: Role) -> Result<(), String> {
    if let Some(c) = plan.core(role) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
            return Err(format!(
                "could not pin the {} thread to core {c}",
                role.name()
            ));
        }
    }
    if role == Role::Engine {
        if let Some(p) = plan.engine_fifo {
            sys::set_fifo_for_current_thread(p)
                .map_err(|e| sys::permission_hint(&e, "SCHED_FIFO"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(engine: usize, feed: usize, gateway: usize, hk: usize) -> CpuConfig {
        CpuConfig {
            engine: Some(engine),
            feeds: vec![feed],
            gateway: Some(gateway),
            housekeeping: Some(hk),
            ..CpuConfig::default()
        }
    }

    #[test]
    fn reference_layout_on_a_big_machine_pins_everything() {
        let p = plan(&cpu(3, 2, 4, 0), &[0, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(
            (p.engine, p.feed, p.gateway, p.housekeeping),
            (Some(3), Some(2), Some(4), Some(0))
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.describe(), "engine@3 feed@2 gateway@4 housekeeping@0");
    }

    #[test]
    fn two_cores_warn_and_run_unpinned() {
        let p = plan(&CpuConfig::default(), &[0, 1]).unwrap();
        assert_eq!(
            (p.engine, p.feed, p.gateway, p.housekeeping),
            (None, None, None, Some(0))
        );
        assert!(p.warnings.iter().any(|w| w.contains("engine = 3")));
        assert!(p.warnings.iter().any(|w| w.contains("4 distinct cores")));
    }

    #[test]
    fn strict_pinning_refuses_what_it_cannot_honour() {
        let strict = CpuConfig {
            strict_pinning: true,
            ..CpuConfig::default()
        };
        let e = plan(&strict, &[0, 1]).unwrap_err();
        assert!(e.to_string().contains("strict_pinning"), "{e}");
        // A shared engine core is refused too.
        let shared = CpuConfig {
            strict_pinning: true,
            ..cpu(1, 1, 0, 0)
        };
        let e = plan(&shared, &[0, 1]).unwrap_err();
        assert!(e.to_string().contains("shares core 1"), "{e}");
        // A layout that fits is fine.
        let ok = CpuConfig {
            strict_pinning: true,
            ..cpu(1, 0, 0, 0)
        };
        assert!(plan(&ok, &[0, 1]).is_ok());
    }
}
