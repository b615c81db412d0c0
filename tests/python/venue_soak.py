#!/usr/bin/env python3
"""Soak of `ringmaker venue`: run by hand, results recorded under tuning/runs/.

Usage: venue_soak.py PATH/TO/ringmaker [--minutes 10] [--speed 10] [--faults SPEC]

Starts the venue on the shipped USDⓈ-M sample with three HMAC accounts (keys made up for the run),
and three clients, each with Binance's own Python SDK: a REST loop placing post-only orders around
the touch and cancelling them, a WebSocket API connection doing the same, a depth + bookTicker
stream and its user data stream, reconnecting whenever the venue drops a connection (pass e.g.
--faults 'drop-connections@every=60s'). Every 10 s it samples the venue's resident memory. At the
end every order each client placed is looked up over REST: each must be open (then cancelled) or
in a final state; none may be unknown. Prints a summary; exits non-zero if an order is
unaccounted for or the venue died.
"""

import argparse
import asyncio
import os
import random
import secrets
import ssl
import subprocess
import sys
import tempfile
import time

from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYMBOL = "BTCUSDT"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def start(binary, speed, faults, accounts_path):
    cert_dir = tempfile.mkdtemp(prefix="venue-soak-cert-")
    args = [
        binary, "venue",
        "--data", os.path.join(ROOT, "tests/data/binance-usdm/btcusdt_20240808.gz"),
        "--accounts", accounts_path, "--listen", "127.0.0.1:0",
        "--speed", str(speed), "--cert-out", cert_dir,
    ]
    if faults:
        args += ["--faults", faults]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(cert_dir, "venue.err"), "w"), text=True)
    info = {}
    while len(info) < 3:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the venue did not start")
        k, _, v = line.strip().partition("=")
        info[k] = v
    return proc, info, cert_dir


class Client:
    def __init__(self, n, key, secret, info, ctx):
        self.n, self.placed, self.errors, self.reconnects, self.events = n, [], 0, 0, 0
        self.client = DerivativesTradingUsdsFutures(
            config_rest_api=ConfigurationRestAPI(api_key=key, api_secret=secret, base_path=info["rest"], https_agent=ctx, retries=0, timeout=5000),
            config_ws_api=ConfigurationWebSocketAPI(api_key=key, api_secret=secret, stream_url=info["ws"] + "/ws-fapi/v1", https_agent=ctx),
            config_ws_streams=ConfigurationWebSocketStreams(stream_url=info["ws"], https_agent=ctx),
        )

    def touch(self):
        book = self.client.rest_api.order_book(symbol=SYMBOL, limit=5).data()
        return float(book.bids[0][0]), float(book.asks[0][0])

    async def rest_loop(self, until):
        k = 0
        while time.time() < until:
            try:
                bid, ask = self.touch()
                side = random.choice(["BUY", "SELL"])
                px = round((bid - 5 * random.randint(1, 20)) if side == "BUY" else (ask + 5 * random.randint(1, 20)), 1)
                cid = f"soak{self.n}-r{k}"
                k += 1
                self.placed.append(cid)
                o = self.client.rest_api.new_order(symbol=SYMBOL, side=side, type="LIMIT", time_in_force="GTX", quantity=0.002, price=px, new_client_order_id=cid).data()
                if random.random() < 0.7:
                    self.client.rest_api.cancel_order(symbol=SYMBOL, orig_client_order_id=cid)
            except Exception:  # noqa: BLE001 (drops, 429s: counted, the loop goes on)
                self.errors += 1
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.2)

    async def ws_loop(self, until):
        k = 0
        while time.time() < until:
            try:
                api = await self.client.websocket_api.create_connection()
                while time.time() < until:
                    bid, ask = self.touch()
                    cid = f"soak{self.n}-w{k}"
                    k += 1
                    self.placed.append(cid)
                    await api.new_order(symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTX", quantity=0.002, price=round(bid - 50.0, 1), new_client_order_id=cid)
                    await api.cancel_order(symbol=SYMBOL, orig_client_order_id=cid)
                    await asyncio.sleep(0.3)
            except Exception:  # noqa: BLE001
                self.reconnects += 1
                await asyncio.sleep(1.0)

    async def stream_loop(self, until):
        while time.time() < until:
            try:
                s = await self.client.websocket_streams.create_connection()
                d = await s.diff_book_depth_streams(symbol="btcusdt", update_speed="100ms")
                d.on("message", lambda m: setattr(self, "events", self.events + 1))
                key = self.client.rest_api.start_user_data_stream().data().listen_key
                u = await s.user_data(key)
                u.on("message", lambda m: setattr(self, "events", self.events + 1))
                while time.time() < until:
                    await asyncio.sleep(5)
                    self.client.rest_api.keepalive_user_data_stream()
            except Exception:  # noqa: BLE001
                self.reconnects += 1
                await asyncio.sleep(1.0)

    def account_for(self):
        unknown, final, open_ = [], 0, 0
        for cid in self.placed:
            try:
                o = self.client.rest_api.query_order(symbol=SYMBOL, orig_client_order_id=cid).data()
                if o.status in ("NEW", "PARTIALLY_FILLED"):
                    open_ += 1
                    self.client.rest_api.cancel_order(symbol=SYMBOL, orig_client_order_id=cid)
                else:
                    final += 1
            except Exception as e:  # noqa: BLE001
                # -2013 "Order does not exist": a rejected placement (e.g. -5022) never existed.
                if "-2013" in str(e) or "does not exist" in str(e):
                    final += 1
                else:
                    unknown.append((cid, str(e)[:80]))
        return final, open_, unknown


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--speed", type=float, default=10)
    ap.add_argument("--faults", default="")
    a = ap.parse_args()
    keys = [(secrets.token_hex(32), secrets.token_hex(32)) for _ in range(3)]
    acc = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    for k, s in keys:
        acc.write(f'[[account]]\napi_key = "{k}"\nhmac_secret = "{s}"\n[account.balances]\nUSDT = "100000"\n\n')
    acc.close()
    proc, info, cert_dir = start(a.binary, a.speed, a.faults, acc.name)
    ctx = ssl.create_default_context(cafile=info["cert"])
    clients = [Client(i, k, s, info, ctx) for i, (k, s) in enumerate(keys)]
    until = time.time() + a.minutes * 60
    rss = []

    async def sample():
        while time.time() < until:
            rss.append((round(time.time() - (until - a.minutes * 60)), rss_kib(proc.pid)))
            await asyncio.sleep(10)

    tasks = [sample()]
    for c in clients:
        tasks += [c.rest_loop(until), c.ws_loop(until), c.stream_loop(until)]
    await asyncio.gather(*tasks, return_exceptions=True)
    alive = proc.poll() is None
    total_unknown = 0
    for c in clients:
        final, open_, unknown = c.account_for()
        total_unknown += len(unknown)
        print(f"client {c.n}: {len(c.placed)} orders placed: {final} final, {open_} open (cancelled now), "
              f"{len(unknown)} unaccounted {unknown[:3]}; {c.errors} request errors, {c.reconnects} reconnects, {c.events} stream events")
    print("venue RSS (s, KiB):", rss)
    proc.terminate()
    proc.wait(timeout=10)
    print(f"venue alive to the end: {alive}; exit {proc.returncode}; log {cert_dir}/venue.err")
    sys.exit(0 if alive and total_unknown == 0 else 1)


if __name__ == "__main__":
    asyncio.run(main())
