#!/usr/bin/env python3
"""Binance's own Python SDK for USDⓈ-M futures against `ringmaker venue`, over TLS.

Usage: venue_interop.py PATH/TO/ringmaker

Starts `ringmaker venue` on the shipped USDⓈ-M sample with the example accounts
(configs/venue-accounts.toml: public test keys), trusts the certificate it writes, and drives it
with `binance-sdk-derivatives-trading-usds-futures` (REST, WebSocket API, WebSocket streams):
exchangeInfo and a depth snapshot; depth and bookTicker streams kept as a synced book by the
documented procedure; a post-only order and a crossing post-only order (-5022); query and cancel
over the WebSocket API and REST; a user data stream with the matching ORDER_TRADE_UPDATEs; and a
429 when it floods. Exits non-zero with the failed check on any mismatch.
"""

import asyncio
import base64
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common import errors
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
API_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
SYMBOL = "BTCUSDT"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok  {what}", flush=True)


def start_venue(binary):
    cert_dir = tempfile.mkdtemp(prefix="venue-cert-")
    proc = subprocess.Popen(
        [
            binary, "venue",
            "--data", os.path.join(ROOT, "tests/data/binance-usdm/btcusdt_20240808.gz"),
            "--config", os.path.join(ROOT, "configs/default.toml"),
            "--accounts", os.path.join(ROOT, "configs/venue-accounts.toml"),
            "--listen", "127.0.0.1:0", "--speed", "1", "--cert-out", cert_dir,
        ],
        stdout=subprocess.PIPE, text=True,
    )
    info = {}
    deadline = time.time() + 30
    while len(info) < 3 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, _, value = line.strip().partition("=")
        if key in ("rest", "ws", "cert"):
            info[key] = value
    if len(info) < 3:
        proc.kill()
        raise AssertionError(f"the venue did not print rest=, ws=, cert= ({info})")
    return proc, info


def abrupt_clients(info, n=8):
    """Clients that subscribe to the 0 ms depth stream and vanish (a TCP reset, no close frame)
    while the venue is writing to them: the venue must stay up (a write to such a socket is an
    error on that connection, never a SIGPIPE that ends the process)."""
    host, port = info["ws"].removeprefix("wss://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=info["cert"])
    while n > 0:
        try:
            raw = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            break  # the venue is gone: the caller's check says so
        tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        tls.sendall((
            "GET /public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())
        tls.recv(4096)
        time.sleep(0.2)
        if n % 2:
            # A reset: no close frame, no FIN.
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Otherwise a plain close (FIN) while the venue keeps writing the stream: its next
        # writes meet a closed socket (EPIPE).
        tls.close()
        n -= 1
    time.sleep(1.0)


async def main(binary):
    proc, info = start_venue(binary)
    try:
        await run(info)
        abrupt_clients(info)
        check(proc.poll() is None, f"the venue outlives clients that vanish mid-stream (exit {proc.returncode})")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    check(proc.returncode == 0, f"the venue exits 0 on SIGTERM (got {proc.returncode})")


async def run(info):
    ctx = ssl.create_default_context(cafile=info["cert"])
    client = DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(
            api_key=API_KEY, api_secret=API_SECRET, base_path=info["rest"],
            https_agent=ctx, retries=0, timeout=5000,
        ),
        config_ws_api=ConfigurationWebSocketAPI(
            api_key=API_KEY, api_secret=API_SECRET,
            stream_url=info["ws"] + "/ws-fapi/v1", https_agent=ctx, reconnect_attempts=1,
        ),
        config_ws_streams=ConfigurationWebSocketStreams(
            stream_url=info["ws"], https_agent=ctx, reconnect_attempts=1,
        ),
    )
    rest = client.rest_api

    # ---- exchangeInfo, time ------------------------------------------------------------------
    ex = rest.exchange_information().data()
    syms = {s.symbol: s for s in ex.symbols}
    check(SYMBOL in syms, "exchangeInfo lists BTCUSDT")
    filters = {f.filter_type: f for f in syms[SYMBOL].filters}
    check(filters["PRICE_FILTER"].tick_size == "0.10", "BTCUSDT tick 0.10")
    check(filters["LOT_SIZE"].step_size == "0.001", "BTCUSDT step 0.001")

    # ---- streams: depth and bookTicker, a book synced by the documented procedure ---------------
    streams = await client.websocket_streams.create_connection()
    events = []
    tickers = []
    depth = await streams.diff_book_depth_streams(symbol="btcusdt", update_speed="100ms")
    depth.on("message", lambda m: events.append(m))
    ticker = await streams.individual_symbol_book_ticker_streams(symbol="btcusdt")
    ticker.on("message", lambda m: tickers.append(m))
    await asyncio.sleep(2.0)
    snap = rest.order_book(symbol=SYMBOL, limit=1000).data()
    last_id = snap.last_update_id
    check(last_id and snap.bids and snap.asks, f"depth snapshot, lastUpdateId {last_id}")
    book = {"b": {}, "a": {}}
    for p, q in snap.bids:
        book["b"][float(p)] = float(q)
    for p, q in snap.asks:
        book["a"][float(p)] = float(q)
    await asyncio.sleep(3.0)
    synced, prev_u, applied = False, None, 0
    for e in list(events):
        if e.u < last_id:
            continue
        if not synced:
            check(e.U <= last_id <= e.u, "the first diff bridges the snapshot (U <= lastUpdateId <= u)")
            synced = True
        else:
            check(e.pu == prev_u, f"pu chain at u={e.u}") if applied < 3 else None
            if e.pu != prev_u:
                raise AssertionError(f"gap in the pu chain at u={e.u}")
        for side, levels in (("b", e.b), ("a", e.a)):
            for p, q in levels:
                if float(q) == 0:
                    book[side].pop(float(p), None)
                else:
                    book[side][float(p)] = float(q)
        prev_u = e.u
        applied += 1
    check(synced and applied > 0, f"{applied} diffs applied after the snapshot, no gap")
    best_bid, best_ask = max(book["b"]), min(book["a"])
    check(best_bid < best_ask, f"the local book is not crossed ({best_bid} < {best_ask})")
    check(len(tickers) > 0, f"{len(tickers)} bookTicker messages")

    # ---- user data stream --------------------------------------------------------------------
    listen_key = rest.start_user_data_stream().data().listen_key
    check(bool(listen_key), "listenKey from POST /fapi/v1/listenKey")
    user_events = []
    user = await streams.user_data(listen_key)
    user.on("message", lambda m: user_events.append(m))
    # The SDK sends SUBSCRIBE without waiting for its answer: let it reach the venue before the
    # first order, whose NEW event would otherwise go out before the key is subscribed.
    await asyncio.sleep(1.0)

    # ---- WebSocket API: a post-only order, a crossing post-only order, query, cancel ----------------
    api = await client.websocket_api.create_connection()
    px_bid = round(best_bid - 100.0, 1)
    placed = (await api.new_order(
        symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTX",
        quantity=0.002, price=px_bid, new_client_order_id="interop-1",
    )).data().result
    check(placed.status == "NEW", f"post-only bid at {px_bid}: NEW, orderId {placed.order_id}")
    # The SDK logs a WebSocket API error and hands back the error body (older versions raise).
    try:
        r = (await api.new_order(
            symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTX",
            quantity=0.002, price=round(best_ask + 50.0, 1), new_client_order_id="interop-2",
        )).data()
        err = r.get("error", {}) if isinstance(r, dict) else {}
        code = err.get("code")
    except Exception as e:  # noqa: BLE001 (whatever the SDK raises carries the venue's error)
        code = -5022 if "-5022" in str(e) else str(e)
    check(code == -5022, f"a crossing post-only order is rejected -5022 (got {code})")
    status = (await api.query_order(symbol=SYMBOL, order_id=placed.order_id)).data().result
    check(status.status == "NEW", "order.status over the WebSocket API: NEW")
    rest_status = rest.query_order(symbol=SYMBOL, order_id=placed.order_id).data()
    check(rest_status.client_order_id == "interop-1", "GET /fapi/v1/order: the same order")
    cancelled = (await api.cancel_order(symbol=SYMBOL, order_id=placed.order_id)).data().result
    check(cancelled.status == "CANCELED", "order.cancel over the WebSocket API: CANCELED")
    # A second one, cancelled over REST.
    second = rest.new_order(
        symbol=SYMBOL, side="SELL", type="LIMIT", time_in_force="GTX",
        quantity=0.002, price=round(best_ask + 100.0, 1), new_client_order_id="interop-3",
    ).data()
    check(second.status == "NEW", "POST /fapi/v1/order: NEW")
    gone = rest.cancel_order(symbol=SYMBOL, order_id=second.order_id).data()
    check(gone.status == "CANCELED", "DELETE /fapi/v1/order: CANCELED")
    await asyncio.sleep(1.0)
    updates = [e for e in user_events if getattr(e, "actual_instance", e) is not None]
    kinds = []
    for e in updates:
        inner = getattr(e, "actual_instance", e)
        o = getattr(inner, "o", None)
        if o is not None:
            kinds.append((o.c, o.X))
    check(("interop-1", "NEW") in kinds and ("interop-1", "CANCELED") in kinds,
          f"ORDER_TRADE_UPDATE NEW and CANCELED for interop-1 on the user data stream ({kinds})")
    check(("interop-3", "CANCELED") in kinds, "ORDER_TRADE_UPDATE CANCELED for interop-3")

    # ---- flood: a 429 --------------------------------------------------------------------------
    got_429 = False
    for _ in range(200):
        try:
            rest.order_book(symbol=SYMBOL, limit=1000)
        except errors.TooManyRequestsError:
            got_429 = True
            break
        except errors.RateLimitBanError:
            got_429 = True
            break
        except errors.NetworkError:
            # A pooled keep-alive connection the venue closed while idle (after 30 s, as a
            # server may): the next request opens a new one.
            continue
    check(got_429, "flooding the depth endpoint gets 429")

    await api.close_connection()
    await streams.close_connection()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    asyncio.run(main(sys.argv[1]))
    print("venue interop: all checks passed")
