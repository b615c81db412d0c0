#!/usr/bin/env bash
# Read-only report of the host settings the tuning runbook cares about. Changes nothing.
set -u
show() { printf '%-22s %s\n' "$1" "$2"; }
readf() { [ -r "$1" ] && tr -d '\n' <"$1" || printf 'n/a'; }

show "host" "$(uname -n) ($(uname -r))"
show "cpus" "$(nproc --all) online, $(nproc) usable by this process"
show "isolated cpus" "$(readf /sys/devices/system/cpu/isolated)"
show "nohz_full cpus" "$(readf /sys/devices/system/cpu/nohz_full)"
cmdline=$(readf /proc/cmdline)
for k in isolcpus nohz_full rcu_nocbs irqaffinity intel_idle.max_cstate; do
  v=$(printf '%s\n' "$cmdline" | tr ' ' '\n' | grep "^$k=" | head -1)
  show "cmdline $k" "${v:-unset}"
done
show "governor cpu0" "$(readf /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor)"
show "THP" "$(readf /sys/kernel/mm/transparent_hugepage/enabled)"
show "clocksource" "$(readf /sys/devices/system/clocksource/clocksource0/current_clocksource)"
if command -v pgrep >/dev/null && pgrep -x irqbalance >/dev/null; then
  show "irqbalance" "running (pins IRQs on its own; stop it on a tuned host)"
else
  show "irqbalance" "not running"
fi
if grep -q constant_tsc /proc/cpuinfo 2>/dev/null; then
  show "TSC" "constant_tsc$(grep -q nonstop_tsc /proc/cpuinfo && printf ', nonstop_tsc')"
else
  show "TSC" "no constant_tsc flag: TSC-based timing (quanta) is unreliable here"
fi
