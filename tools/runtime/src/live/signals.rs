//! SIGINT / SIGTERM: the first one asks the run to stop cleanly (cancel all orders, drain the
//! rings, flush the journal, print the summary); a second one, while the run is stopping,
//! exits at once with status 1 (the journal's torn-tail rule makes even that safe to replay).

use anyhow::Context;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Registers both signals to set `stop`. Call once, before the run starts.
pub fn register(stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the conditional exit checks the flag before the second handler sets
        // it, so the first signal only sets the flag and a second one exits.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(stop))
            .context("installing a signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(stop))
            .context("installing a signal handler")?;
    }
    Ok(())
}

/// SIGHUP sets `reload` (the run re-reads its config: `ringmaker ctl reload` does the same).
/// Without it SIGHUP would end the process.
pub fn register_reload(reload: &Arc<AtomicBool>) -> anyhow::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(reload))
        .context("installing the SIGHUP handler")?;
    Ok(())
}
