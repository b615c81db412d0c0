#!/usr/bin/env python3
"""Builds starting corpora for the fuzz targets from the shipped recordings (tests/data).

Usage (from feeds/fuzz): python3 seed.py   -> writes corpus/<target>/seed-*  (git-ignored)

Inputs that found bugs live in regressions/<target>/ (committed), not here: a crashing seed would
stop every fuzzing run at start-up.
"""
import gzip, hashlib, json, os, random, struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data")
FILES = ["binance-usdm/btcusdt_20240808.gz", "binance-spot/btcusdt_20240808.gz"]


def put(target, blob):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def lines(path, n):
    out = []
    with gzip.open(os.path.join(DATA, path), "rb") as f:
        for raw in f:
            out.append(raw.rstrip(b"\r\n"))
            if len(out) >= n:
                break
    return out


def shrink_snapshot(payload):
    """A REST snapshot cut to a few levels a side, so the corpus stays small."""
    o = json.loads(payload)
    o["bids"], o["asks"] = o["bids"][:5], o["asks"][:5]
    return json.dumps(o, separators=(",", ":")).encode()


random.seed(7)
per_kind = {}
rec_lines = []
for path in FILES:
    ls = lines(path, 3000)
    rec_lines.append(b"\n".join(ls[:40]) + b"\n")
    for l in ls:
        ts, _, payload = l.partition(b" ")
        kind = b"snapshot" if payload.startswith(b'{"lastUpdateId"') else payload[:40]
        if kind == b"snapshot":
            payload = shrink_snapshot(payload)
        if len(payload) > 3000:
            continue
        bucket = per_kind.setdefault((path, kind), [])
        if len(bucket) < 15:
            bucket.append(payload)
for bucket in per_kind.values():
    for p in bucket:
        put("decode_any", p)
        # The bare payload, without the combined-stream envelope.
        if p.startswith(b'{"stream"'):
            inner = json.loads(p)["data"]
            put("decode_any", json.dumps(inner, separators=(",", ":")).encode())

# Shape variants of real depth diffs around the fast path's edges: whitespace, key order, repeated
# keys that both decoders must treat alike (the last one wins), floats and escapes.
depth = [p for (path, kind), b in per_kind.items() for p in b if b"depthUpdate" in p][:10]
for p in depth:
    o = json.loads(p)
    inner = o.get("data", o)
    put("decode_any", json.dumps(o).encode())  # with spaces after ':' and ','
    moved = {k: v for k, v in inner.items() if k != "s"}
    moved["s"] = inner["s"]
    put("decode_any", json.dumps(moved, separators=(",", ":")).encode())
    raw = json.dumps(inner, separators=(",", ":")).encode()
    for extra in [b',"E":1', b',"U":1', b',"pu":7', b',"T":1.5', b',"x":"\\u0041"']:
        put("decode_any", raw[:-1] + extra + b"}")

# Mark prices (the recordings have none): the docs' example, compact, bare and enveloped, with
# negative funding and COIN-M's delivery shape (no funding: "r":"", T 0).
with open(os.path.join(DATA, "binance-fixtures/futures/market_data_json/mark_price_stream.json"), "rb") as f:
    mark = json.loads(f.read())
for variant in [mark, dict(mark, r="-0.00012500"), dict(mark, r="", T=0)]:
    raw = json.dumps(variant, separators=(",", ":")).encode()
    put("decode_any", raw)
    put("decode_any", b'{"stream":"btcusdt@markPrice@1s","data":' + raw + b"}")

for blob in rec_lines:
    put("recording_line", blob)
    put("recording_line", gzip.compress(blob))

grids = [(1, 10), (2, 1), (3, 1), (5, 1), (8, 1), (0, 1), (18, 7)]
values = [b"61800.20", b"0.014", b"61837.63000000", b"3.78826000", b"0.00000100", b"0", b"1e5",
          b"18446744073709551615", b"-1.0", b".5", b"5.", b"9223372036854775807", b""]
for scale, mant in grids:
    for v in values:
        put("decimal", bytes([scale]) + struct.pack("<Q", (mant - 1) << 1) + v)

def ws_frame(fin, opcode, payload):
    """A server's (unmasked) WebSocket frame, with the shortest length encoding."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([n])
    elif n <= 0xFFFF:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


# ws_frame: byte 0 = limit (bits 0-2) and read size (bits 3-5), then real payloads as text frames,
# some fragmented with a ping between the fragments, a pong now and then, a close at the end.
ws_payloads = [p for b in per_kind.values() for p in b][:60]
for k in range(0, len(ws_payloads), 6):
    stream = b""
    for i, p in enumerate(ws_payloads[k:k + 6]):
        if i % 3 == 0:
            a, b, c = p[: len(p) // 3], p[len(p) // 3: 2 * len(p) // 3], p[2 * len(p) // 3:]
            stream += ws_frame(False, 1, a) + ws_frame(True, 9, b"ping") + ws_frame(False, 0, b) + ws_frame(True, 0, c)
        else:
            stream += ws_frame(True, 1, p)
        if i % 4 == 0:
            stream += ws_frame(True, 10, struct.pack(">I", i))
    stream += ws_frame(True, 8, struct.pack(">H", 1000) + b"bye")
    for cfg in (0x06, 0x07, 0x3F, 0x05 | (4 << 3)):
        put("ws_frame", bytes([cfg]) + stream)

for i in range(16):
    put("book_sync", bytes([i % 4]) + bytes(random.randrange(256) for _ in range(random.randrange(20, 400))))
