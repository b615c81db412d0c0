#!/usr/bin/env bash
# Checks the monitoring configs: the alert rules (promtool check rules), their unit tests
# (promtool test rules), the example Prometheus config (promtool check config), and the Grafana
# dashboard (valid JSON, unique panel ids, every query parses as PromQL and names only metrics
# that ringmaker exports). Works from any directory; exits non-zero on the first failure.
#
# promtool: $RINGMAKER_PROMTOOL, else the one on PATH (Debian: apt-get install prometheus).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
grafana="$here/../grafana"

promtool="${RINGMAKER_PROMTOOL:-$(command -v promtool || true)}"
if [ -z "$promtool" ] || [ ! -x "$promtool" ]; then
  echo "check.sh: promtool not found; install it (Debian: apt-get install -y --no-install-recommends prometheus) or set RINGMAKER_PROMTOOL" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
echo "--- promtool check rules alerts.yml"
"$promtool" check rules alerts.yml
echo "--- promtool test rules alerts_test.yml"
"$promtool" test rules alerts_test.yml
echo "--- promtool check config prometheus.yml"
"$promtool" check config prometheus.yml

echo "--- metric names, test coverage, dashboard"
python3 - "$here" "$grafana/ringmaker.json" "$tmp/dashboard_rules.yml" <<'EOF'
import json, re, sys

here, dash_path, rules_out = sys.argv[1:4]
errors = []

# The metrics ringmaker exports (the metrics issue's list). A name here that the run does not
# export makes a panel empty or an alert dead, so every name used must be one of these.
KNOWN = set("""
ringmaker_position ringmaker_position_limit ringmaker_open_orders ringmaker_open_quantity
ringmaker_fair_value ringmaker_market_best_price ringmaker_quote_best_price ringmaker_pnl
ringmaker_daily_loss_limit ringmaker_mode ringmaker_mode_reason ringmaker_book_valid
ringmaker_book_stale ringmaker_orders_placed_total ringmaker_orders_cancelled_total
ringmaker_cancel_budget_per_minute ringmaker_fills_total ringmaker_filled_quantity_total
ringmaker_rejects_total ringmaker_book_gaps_total ringmaker_book_resyncs_total
ringmaker_risk_refusals_total ringmaker_rate_limit_usage_ratio ringmaker_reconnects_total
ringmaker_clock_offset_seconds ringmaker_clock_synchronised ringmaker_clock_fault
ringmaker_hop_latency_seconds_bucket ringmaker_hop_latency_seconds_sum
ringmaker_hop_latency_seconds_count ringmaker_ring_occupancy ringmaker_ring_capacity
ringmaker_journal_bytes ringmaker_journal_segments ringmaker_journal_records_total
ringmaker_engine_events_total ringmaker_intents_total ringmaker_mode_changes_total
ringmaker_feed_ring_overflows_total ringmaker_feed_dropped_events_total
ringmaker_control_commands_total ringmaker_config_reloads_total ringmaker_build_info
ringmaker_start_time_seconds ringmaker_cancel_budget_used ringmaker_clock_maxerror_seconds
ringmaker_venue_rate_limited_total ringmaker_daily_pnl ringmaker_bus_connected
ringmaker_bus_heartbeats_total ringmaker_bus_requests_total ringmaker_firm_halted
ringmaker_bus_peers ringmaker_firm_claim_usd ringmaker_firm_room_usd ringmaker_firm_pnl_usd
ringmaker_bus_archive_records_total ringmaker_lease_held ringmaker_lease_fenced
""".split())
NAME = re.compile(r"\bringmaker_[a-z_]+")
# Bare words in a query that are not ringmaker metrics: PromQL's functions, aggregations,
# keywords and modifiers, label names, and `up`. Anything else is a metric we do not know.
WORDS = set("""
up time abs max min sum avg count rate increase irate delta changes resets max_over_time
min_over_time avg_over_time by without on ignoring group_left group_right and or unless bool
offset label_values job instance instrument side component currency mode reason limit link hop
quantile ring check code liquidity command result version histogram_quantile le venue
""".split())

def unknown(text, where):
    for name in sorted(set(NAME.findall(text))):
        if name not in KNOWN:
            errors.append(f"{where}: unknown metric {name}")

def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)

def other_words(expr, where):
    e = strip_strings(expr)
    e = re.sub(r"\$\w+", "", e)            # Grafana variables
    e = re.sub(r"\[[^\]]*\]", "", e)       # range durations
    for w in sorted(set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_:]*\b", e))):
        if w.startswith("ringmaker_") or w in WORDS:
            continue
        if re.fullmatch(r"e\d*|[0-9]+[smhdwy]", w):
            continue
        errors.append(f"{where}: unexpected word {w!r} (not a ringmaker metric, function or label)")

# --- alerts.yml and its tests
alerts = open(f"{here}/alerts.yml").read()
unknown(alerts, "alerts.yml")
tests = open(f"{here}/alerts_test.yml").read()
unknown(tests, "alerts_test.yml")

names = re.findall(r"^\s*- alert:\s*(\S+)", alerts, re.M)
if len(names) != len(set(names)):
    errors.append("alerts.yml: an alert name is used twice")
for block in re.split(r"^\s*- alert:", alerts, flags=re.M)[1:]:
    name = block.split()[0]
    for field in ("for:", "severity:", "summary:", "description:"):
        if field not in block:
            errors.append(f"alerts.yml: {name} has no {field}")
    sev = re.search(r"severity:\s*(\S+)", block)
    if sev and sev.group(1) not in ("page", "warn"):
        errors.append(f"alerts.yml: {name} has severity {sev.group(1)} (page or warn)")
    want = f'runbook: "docs/OPERATIONS.md#{name.lower()}"'
    if want not in block:
        errors.append(f"alerts.yml: {name} needs {want}")

# Each alert needs a test where it fires and one where it must not.
fires, quiet = set(), set()
lines = tests.splitlines()
for i, line in enumerate(lines):
    m = re.match(r"\s*alertname:\s*(\S+)\s*$", line)
    if not m:
        continue
    nxt = next((l for l in lines[i + 1:] if l.strip() and not l.strip().startswith("#")), "")
    if re.match(r"\s*exp_alerts:\s*\[\]\s*$", nxt):
        quiet.add(m.group(1))
    elif re.match(r"\s*exp_alerts:\s*$", nxt):
        fires.add(m.group(1))
for name in names:
    if name not in fires:
        errors.append(f"alerts_test.yml: no test where {name} fires")
    if name not in quiet:
        errors.append(f"alerts_test.yml: no test where {name} must not fire")
for name in sorted((fires | quiet) - set(names)):
    errors.append(f"alerts_test.yml: tests an alert alerts.yml does not have: {name}")

# --- the dashboard
try:
    dash = json.load(open(dash_path))
except (OSError, ValueError) as e:
    errors.append(f"{dash_path}: {e}")
    dash = None

exprs = []
if dash is not None:
    if dash.get("schemaVersion", 0) < 36:
        errors.append("dashboard: schemaVersion below 36")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        errors.append("dashboard: no datasource variable named 'datasource'")
    if "label_values(ringmaker_position, instrument)" not in json.dumps(variables.get("instrument", {})):
        errors.append("dashboard: no instrument variable from label_values(ringmaker_position, instrument)")
    for v in variables.values():
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            unknown(q, f"dashboard variable {v.get('name')}")

    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))
    ids = {}
    for p in walk(dash.get("panels", [])):
        pid = p.get("id")
        if not isinstance(pid, int):
            errors.append(f"dashboard: panel {p.get('title')!r} has no integer id")
        elif pid in ids:
            errors.append(f"dashboard: panels {ids[pid]!r} and {p.get('title')!r} share id {pid}")
        else:
            ids[pid] = p.get("title")
        if p.get("type") != "row":
            if not p.get("targets"):
                errors.append(f"dashboard: panel {p.get('title')!r} has no query")
            ds = p.get("datasource", {})
            if ds.get("uid") != "${datasource}":
                errors.append(f"dashboard: panel {p.get('title')!r} does not use ${{datasource}}")
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            where = f"dashboard panel {pid} {p.get('title')!r} target {t.get('refId')}"
            if not expr:
                errors.append(f"{where}: no expr")
                continue
            unknown(expr, where)
            other_words(expr, where)
            exprs.append((f"p{pid}_{t.get('refId')}", expr, where))
    for i, a in enumerate(dash.get("annotations", {}).get("list", [])):
        if a.get("expr"):
            unknown(a["expr"], f"dashboard annotation {a.get('name')}")
            exprs.append((f"annotation{i}", a["expr"], f"annotation {a.get('name')}"))

# Every dashboard query, with Grafana's variables filled in, as a recording rule: promtool
# then parses each one as PromQL.
def fill(expr):
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)
with open(rules_out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for rec, expr, _ in exprs:
        f.write(f"      - record: dashboard:{rec}\n        expr: {json.dumps(fill(expr))}\n")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"alerts.yml: {len(names)} alerts, each fired and held quiet by alerts_test.yml")
print(f"dashboard: {len(ids)} panels with unique ids, {len(exprs)} queries, every metric known")
EOF

echo "--- dashboard queries parse as PromQL (promtool check rules)"
"$promtool" check rules "$tmp/dashboard_rules.yml"
echo "check.sh: all monitoring checks passed"
