#!/usr/bin/env bash
# The README's test command: every Rust test, then the interop test of `ringmaker venue` against
# Binance's own Python SDK. Sets up what it needs idempotently: a Python venv under
# target/pyvenv (or $RINGMAKER_VENV) with the pinned SDK from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace

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
