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

for blob in rec_lines:
    put("recording_line", blob)
    put("recording_line", gzip.compress(blob))

grids = [(1, 10), (2, 1), (3, 1), (5, 1), (8, 1), (0, 1), (18, 7)]
values = [b"61800.20", b"0.014", b"61837.63000000", b"3.78826000", b"0.00000100", b"0", b"1e5",
          b"18446744073709551615", b"-1.0", b".5", b"5.", b"9223372036854775807", b""]
for scale, mant in grids:
    for v in values:
        put("decimal", bytes([scale]) + struct.pack("<Q", (mant - 1) << 1) + v)

for i in range(16):
    put("book_sync", bytes([i % 4]) + bytes(random.randrange(256) for _ in range(random.randrange(20, 400))))
