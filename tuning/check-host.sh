#!/usr/bin/env bash
# Superseded by `ringmaker doctor`, which checks everything this script did and more (C-states,
# IRQ affinity, PTP clocks, adjtimex, SO_TIMESTAMPING per interface, memlock, the config's [cpu]),
# each with its fix. This wrapper runs it, passing its arguments on (e.g. --config FILE, --json).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
for bin in "$target/release/ringmaker" "$target/debug/ringmaker" "$(command -v ringmaker || true)"; do
  if [ -n "$bin" ] && [ -x "$bin" ]; then
    exec "$bin" doctor "$@"
  fi
done
printf 'check-host: no ringmaker binary found; build it (cargo build --release -p ringmaker) or put it on PATH, then run: ringmaker doctor\n' >&2
exit 2
