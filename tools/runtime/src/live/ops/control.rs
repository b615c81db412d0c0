//! The run's control socket: `ringmaker ctl --out DIR halt|resume|reduce-only|cancel-all|flatten|
//! status|reload` talks to it, at `DIR/ctl.sock` (mode 0600: the run's user only).
//!
//! One request per connection: a line `VERB [INSTRUMENT]` (an instrument key
//! `binance-usdm:BTCUSDT` or a symbol that names one instrument; all instruments without it).
//! The answer is text: a first line `ok`, `refused: <why>` or `error: <what>`, then the
//! instruments' modes (and, for a reload, the change).
//!
//! Each command that changes something becomes engine commands on the input ring, published
//! from this (the ops) thread like the shutdown's: the engine journals them as inputs, so a replay
//! reproduces them at the same point. The answer waits until the engine has consumed them (its
//! `controls_consumed` count, stored after the batch's modes were published), so the mode it
//! reports is the one the command produced.
//!
//! | verb | engine commands |
//! |---|---|
//! | `halt` | `Halt` (cancel everything, quote nothing) |
//! | `resume` | `Resume` then `Normal` (clears a halt, a flatten, a loss-limit halt, reduce-only) |
//! | `reduce-only` | `ReduceOnly` |
//! | `cancel-all` | `CancelAll` (once; quoting goes on at the next requote) |
//! | `flatten` | `Flatten` (halt, cancel, close the position with IOC orders until flat) |
//! | `status` | none: the modes as last published |
//! | `reload` | `Reload`, after the new engine config was handed over ([`super::reload`]) |

use super::reload::{self, Reloaded};
use super::state::OpsState;
use crate::config::RunConfig;
use crate::live::rings::{InputProducer, SRC_CONTROL};
use crate::live::shared::Shared;
use anyhow::{bail, Context};
use engine::{Command, Event, InstrumentId};
use quanta::Clock;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The socket's file name in the run's output folder.
pub const SOCKET_NAME: &str = "ctl.sock";

/// How long an answer waits for the engine to consume a command.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// An operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Kill switch.
    Halt,
    /// Clear the operator's halt, flatten and reduce-only.
    Resume,
    /// Quote only the side that reduces the position.
    ReduceOnly,
    /// Cancel every working order once.
    CancelAll,
    /// Halt and close the position.
    Flatten,
    /// The modes.
    Status,
    /// Re-read the config file.
    Reload,
}

impl Verb {
    /// Every verb (the metrics' label order).
    pub const ALL: [Verb; 7] = [
        Verb::Halt,
        Verb::Resume,
        Verb::ReduceOnly,
        Verb::CancelAll,
        Verb::Flatten,
        Verb::Status,
        Verb::Reload,
    ];

    /// As typed.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Halt => "halt",
            Verb::Resume => "resume",
            Verb::ReduceOnly => "reduce-only",
            Verb::CancelAll => "cancel-all",
            Verb::Flatten => "flatten",
            Verb::Status => "status",
            Verb::Reload => "reload",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.name() == s)
    }

    /// The engine commands it becomes (per instrument).
    fn commands(self) -> &'static [Command] {
        match self {
            Verb::Halt => &[Command::Halt],
            Verb::Resume => &[Command::Resume, Command::Normal],
            Verb::ReduceOnly => &[Command::ReduceOnly],
            Verb::CancelAll => &[Command::CancelAll],
            Verb::Flatten => &[Command::Flatten],
            Verb::Status | Verb::Reload => &[],
        }
    }
}

/// The control socket of a run, served by the ops thread.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    producer: InputProducer,
    clock: Clock,
    /// Commands the coordinator published before the threads started (counted by the engine
    /// with these).
    early: u64,
    /// Commands published here.
    published: u64,
    /// The run's config file, re-read by a reload.
    config_path: Option<PathBuf>,
    /// The config in force and its text.
    current: RunConfig,
    current_text: String,
}

impl ControlServer {
    /// Binds `out/ctl.sock` (mode 0600). A socket left there by a run that crashed is removed
    /// (the caller holds `out`'s run lock, so no live run owns it); any other file of that name
    /// is refused, never deleted.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        out: &Path,
        producer: InputProducer,
        clock: Clock,
        early: u64,
        config_path: Option<PathBuf>,
        current: RunConfig,
        current_text: String,
    ) -> anyhow::Result<ControlServer> {
        let path = out.join(SOCKET_NAME);
        // sun_path holds 108 bytes with the terminating NUL.
        if path.as_os_str().len() > 107 {
            bail!(
                "the control socket path {} is longer than a Unix socket allows (107 bytes): use \
                 a shorter --out, or set [ops] control = false",
                path.display()
            );
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?,
            Ok(_) => bail!(
                "{} exists and is not a socket: ringmaker did not write it and will not replace \
                 it",
                path.display()
            ),
            Err(_) => {}
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private (0600)", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("making the control socket non-blocking")?;
        Ok(ControlServer {
            listener,
            path,
            producer,
            clock,
            early,
            published: 0,
            config_path,
            current,
            current_text,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force (the run's, or the last one a reload applied).
    pub fn config(&self) -> &RunConfig {
        &self.current
    }

    /// Commands published so far (the shutdown adds them to its count).
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Answers every connection waiting (non-blocking when none).
    pub fn poll(&mut self, shared: &Shared) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // A client that misbehaves costs at most the timeouts, never the run.
                    let _ = self.serve(stream, shared);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    fn serve(&mut self, stream: UnixStream, shared: &Shared) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let request = read_request(&stream, Instant::now() + Duration::from_secs(2))?;
        let answer = self.answer(request.trim(), shared);
        (&stream).write_all(answer.as_bytes())?;
        Ok(())
    }

    /// The answer to one request line.
    pub fn answer(&mut self, request: &str, shared: &Shared) -> String {
        let mut words = request.split_whitespace();
        let Some(verb) = words.next().and_then(Verb::parse) else {
            return format!(
                "error: unknown command {request:?}; one of: {}\n",
                Verb::ALL.map(Verb::name).join(", ")
            );
        };
        let target = words.next();
        if words.next().is_some() {
            return "error: one instrument at most\n".into();
        }
        let ops = &shared.ops;
        ops.control.commands[Verb::ALL.iter().position(|v| *v == verb).unwrap_or(0)]
            .fetch_add(1, Ordering::Relaxed);
        if verb == Verb::Status {
            return format!("ok\n{}", status(&self.current, ops));
        }
        if shared.stopping() {
            return "error: the run is stopping (its shutdown halts and cancels everything)\n"
                .into();
        }
        let ids: Vec<InstrumentId> = match target {
            None => (0..self.current.engine.instruments.len() as InstrumentId).collect(),
            Some(t) => match find_instrument(&self.current, t) {
                Ok(id) => vec![id],
                Err(e) => return format!("error: {e}\n"),
            },
        };
        if verb == Verb::Reload {
            if target.is_some() {
                return "error: reload applies to the whole config, not one instrument\n".into();
            }
            return self.reload(shared);
        }
        for &id in &ids {
            for &cmd in verb.commands() {
                if let Err(e) = self.publish(Event::control(id, 0, cmd), shared) {
                    return format!("error: {e:#}\n");
                }
            }
        }
        match self.wait(shared) {
            Ok(()) => format!("ok\n{}", status(&self.current, ops)),
            Err(e) => format!("error: {e}\n{}", status(&self.current, ops)),
        }
    }

    /// A reload from SIGHUP: the answer, for the run's stderr.
    pub fn reload_from_signal(&mut self, shared: &Shared) -> String {
        let k = Verb::ALL
            .iter()
            .position(|v| *v == Verb::Reload)
            .unwrap_or(0);
        shared.ops.control.commands[k].fetch_add(1, Ordering::Relaxed);
        self.reload(shared)
    }

    fn reload(&mut self, shared: &Shared) -> String {
        let ops = &shared.ops;
        let refuse = |why: String| {
            ops.control.reloads_refused.fetch_add(1, Ordering::Relaxed);
            format!("refused: {why}\nthe running config is kept\n")
        };
        let Some(path) = self.config_path.clone() else {
            return refuse(
                "this run has no config file to re-read (it runs the shipped default)".into(),
            );
        };
        let plan = match reload::plan(&self.current, &self.current_text, &path) {
            Ok(Reloaded::Unchanged) => return "ok\nno change\n".into(),
            Ok(Reloaded::Changed(p)) => *p,
            Err(why) => return refuse(why),
        };
        match ops.pending_reload.lock() {
            Ok(mut slot) => *slot = Some(Box::new(plan.config.engine.clone())),
            Err(_) => return refuse("internal: the reload hand-over is poisoned".into()),
        }
        if let Err(e) = self.publish(Event::control(0, 0, engine::Command::Reload), shared) {
            return refuse(format!("{e:#}"));
        }
        if let Err(e) = self.wait(shared) {
            return format!("error: {e}\n");
        }
        if let Some(why) = ops.reload_answer.lock().ok().and_then(|mut a| a.take()) {
            return refuse(format!("the engine refused it: {why}"));
        }
        ops.control.reloads_applied.fetch_add(1, Ordering::Relaxed);
        let diff = plan.diff_text();
        self.current = plan.config;
        self.current_text = plan.text;
        format!("ok\napplied:\n{diff}{}", status(&self.current, ops))
    }

    fn publish(&mut self, mut ev: Event, shared: &Shared) -> anyhow::Result<()> {
        ev.source = SRC_CONTROL;
        ev.local_time_ns = shared.replay.now().unwrap_or(0);
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            let t = self.clock.raw();
            if self.producer.try_publish(|s| {
                s.event = ev;
                s.t_decode = 0;
                s.t_publish = t;
            }) {
                self.published += 1;
                crate::live::counters::Counters::add(&shared.counters.controls, 1);
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the input ring stayed full for 5 s: the engine is not consuming");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the engine has consumed every command published so far.
    fn wait(&self, shared: &Shared) -> Result<(), String> {
        let target = self.early + self.published;
        let deadline = Instant::now() + ANSWER_WAIT;
        while shared.controls_consumed.load(Ordering::Acquire) < target {
            if Instant::now() > deadline {
                return Err(format!(
                    "the engine did not consume the command within {} s (it is in its input \
                     ring and will be applied); the modes below may not show it yet",
                    ANSWER_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// One request line (1 KiB at most), read within `deadline` however slowly the client sends it.
fn read_request(stream: &UnixStream, deadline: Instant) -> std::io::Result<String> {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let k = (&*stream).read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let line = buf[..n].split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8(line.to_vec()).map_err(|_| std::io::ErrorKind::InvalidData.into())
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The instrument `t` names: a key `venue:SYMBOL`, or a symbol only one instrument has.
fn find_instrument(cfg: &RunConfig, t: &str) -> Result<InstrumentId, String> {
    let keys: Vec<String> = cfg
        .engine
        .instruments
        .iter()
        .map(super::metrics::key)
        .collect();
    if let Some(k) = keys.iter().position(|k| k.eq_ignore_ascii_case(t)) {
        return Ok(k as InstrumentId);
    }
    let by_symbol: Vec<usize> = cfg
        .engine
        .instruments
        .iter()
        .enumerate()
        .filter(|(_, c)| c.instrument.symbol.as_str().eq_ignore_ascii_case(t))
        .map(|(k, _)| k)
        .collect();
    match by_symbol.as_slice() {
        [k] => Ok(*k as InstrumentId),
        [] => Err(format!(
            "no instrument {t:?} in this run; it has: {}",
            keys.join(", ")
        )),
        _ => Err(format!(
            "{t:?} is traded on several venues in this run: say which ({})",
            keys.join(", ")
        )),
    }
}

/// One line per instrument: mode, reason, position, open orders, PnL.
pub fn status(cfg: &RunConfig, ops: &OpsState) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (c, g) in cfg.engine.instruments.iter().zip(ops.instruments.iter()) {
        let (mode, reason) = g.mode();
        let _ = writeln!(
            s,
            "{:<24} {} ({})  position {}  open {} bids / {} asks  pnl {:.4} {}",
            super::metrics::key(c),
            mode.name(),
            reason.name(),
            super::metrics::qty(c, g.position_lots.load(Ordering::Relaxed)),
            g.open_orders[0].load(Ordering::Relaxed),
            g.open_orders[1].load(Ordering::Relaxed),
            c.instrument
                .money_unit()
                .to_f64(i128::from(g.total.load(Ordering::Relaxed))),
            c.instrument.pnl_asset().as_str(),
        );
    }
    for (g, h) in cfg.engine.hedges.iter().zip(ops.hedges.iter()) {
        let base = |units: i128| units as f64 / 10f64.powi(engine::DELTA_SCALE as i32);
        let d = h.delta_units.load(Ordering::Relaxed);
        let orders = |k: usize| h.orders[k].load(Ordering::Relaxed);
        let asset = |ids: &[engine::InstrumentId], quote: bool| {
            cfg.engine.instruments.get(ids[0] as usize).map_or("", |c| {
                if quote {
                    c.instrument.quote_asset.as_str()
                } else {
                    c.instrument.base_asset.as_str()
                }
            })
        };
        let (base_asset, quote_asset) = (asset(&g.quoted, false), asset(&g.hedges, true));
        let _ = writeln!(
            s,
            "{:<24} delta {} {base_asset} (band {}, hard limit {})  {}  hedges {} passive / {} \
             active  cost today {:.4} {quote_asset}",
            format!("hedge {}", g.name),
            if d == i64::MIN {
                "unknown".to_owned()
            } else {
                format!("{:+.6}", base(i128::from(d)))
            },
            base(g.band),
            base(g.hard_limit),
            if h.breaching.load(Ordering::Relaxed) == 1 {
                "breaching"
            } else {
                "in band"
            },
            orders(0),
            orders(1) + orders(2),
            f64::from_bits(h.cost_today.load(Ordering::Relaxed)),
        );
    }
    s
}

/// `ringmaker ctl`: sends `request` to the run writing to `out` and returns its answer. An error
/// when no run is there (no socket, nobody listening).
pub fn request(out: &Path, request: &str) -> anyhow::Result<String> {
    let path = out.join(SOCKET_NAME);
    let stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "no run is answering at {} (is a `ringmaker run --out {}` running?)",
            path.display(),
            out.display()
        )
    })?;
    // A reload waits for the engine (5 s at most) on top of reading the file.
    stream.set_read_timeout(Some(ANSWER_WAIT + Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    (&stream).write_all(format!("{request}\n").as_bytes())?;
    let mut answer = String::new();
    (&stream)
        .take(1 << 20)
        .read_to_string(&mut answer)
        .context("reading the run's answer")?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    /// `status` says each hedge group's delta, band, state, orders and cost, in its units.
    #[test]
    fn status_has_a_line_per_hedge_group() {
        let text = test_support::config_text("hedge-perp-spot-btcusdt.toml");
        let cfg = RunConfig::from_toml(&text).unwrap();
        let ops = OpsState::new(cfg.engine.instruments.len()).with_hedge_groups(1);
        let h = &ops.hedges[0];
        h.delta_units.store(-6_000_000_000, Relaxed);
        h.breaching.store(1, Relaxed);
        h.orders[0].store(7, Relaxed);
        h.orders[1].store(2, Relaxed);
        h.orders[2].store(1, Relaxed);
        h.cost_today.store(1.25f64.to_bits(), Relaxed);
        let s = status(&cfg, &ops);
        let line = s.lines().last().unwrap();
        assert_eq!(
            line,
            "hedge btc                delta -0.006000 BTC (band 0.004, hard limit 0.01)  breaching  \
             hedges 7 passive / 3 active  cost today 1.2500 USDT"
        );
        h.delta_units.store(i64::MIN, Relaxed);
        assert!(status(&cfg, &ops).contains("delta unknown BTC"));
    }
}
