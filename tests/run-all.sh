#!/usr/bin/env bash
# The README's test command: every Rust test, the monitoring configs (configs/prometheus/check.sh:
# alert rules and their promtool tests, the Grafana dashboard), then the interop test of
# `ringmaker venue` against Binance's own Python SDK. Sets up what it needs idempotently:
# promtool (Debian's `prometheus` package, installed when missing and running as root),
# nats-server (Debian's `nats-server` package, the same way) and a
# Python venv under target/pyvenv (or $RINGMAKER_VENV) with the pinned SDK from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, after one `apt-get update` at most.
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then apt-get update; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# promtool and Prometheus, for configs/prometheus/check.sh and tools/tests/ops.rs (which reads
# $RINGMAKER_PROMTOOL, and finds prometheus on PATH or in $RINGMAKER_PROMETHEUS).
if [ -z "${RINGMAKER_PROMTOOL:-}" ]; then
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      apt_install prometheus
    else
      echo "run-all.sh: promtool is missing; install it as root with" >&2
      echo "  apt-get update && apt-get install -y --no-install-recommends prometheus" >&2
      echo "or point RINGMAKER_PROMTOOL at a promtool binary" >&2
      exit 1
    fi
  fi
  RINGMAKER_PROMTOOL="$(command -v promtool)"
fi
export RINGMAKER_PROMTOOL
# tools/tests/ops.rs: promtool and Prometheus itself (same package) must be there, not skipped.
export RINGMAKER_REQUIRE_PROMTOOL=1

# nats-server with JetStream, for the bus tests (tools/tests/bus.rs, which reads
# $RINGMAKER_NATS_SERVER or finds it on PATH or in /usr/sbin, where Debian's package puts it).
if [ -z "${RINGMAKER_NATS_SERVER:-}" ]; then
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    if [ "$(id -u)" -eq 0 ]; then
      apt_install nats-server
    else
      echo "run-all.sh: nats-server is missing; install it as root with" >&2
      echo "  apt-get update && apt-get install -y --no-install-recommends nats-server" >&2
      echo "or point RINGMAKER_NATS_SERVER at a nats-server binary" >&2
      exit 1
    fi
  fi
fi
export RINGMAKER_REQUIRE_NATS=1

cargo test --workspace

bash configs/prometheus/check.sh

venv="${RINGMAKER_VENV:-target/pyvenv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import binance_sdk_derivatives_trading_usds_futures' 2>/dev/null \
   || ! cmp -s tests/python/requirements.txt "$venv/.requirements"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$venv/.requirements"
fi
cargo build --release -p ringmaker
timeout 300 "$venv/bin/python" tests/python/venue_interop.py "${CARGO_TARGET_DIR:-target}/release/ringmaker"
