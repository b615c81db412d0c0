#!/usr/bin/env bash
# Applies the runtime-changeable steps of the tuning runbook (tuning/README.md) and prints the
# kernel command line it recommends for the hot cores. Dry run by default: every command is
# printed, nothing is changed, no privilege is needed. `--apply` runs them (root only).
#
# Usage: tuning/apply-runbook.sh [--dry-run | --apply] [--config FILE | --cores LIST]
#                                [--user NAME]
#
#   --dry-run       print what would be done (the default)
#   --apply         do it (needs root); changes last until reboot, except the limits file
#   --config FILE   hot cores = [cpu] engine, feeds and gateway of a ringmaker config; without a
#                   [cpu] table, the defaults (engine 3, feeds [2], gateway 4)
#   --cores LIST    hot cores given directly, a kernel CPU list (`2-4`, `1,3`)
#   --user NAME     also write /etc/security/limits.d/90-ringmaker.conf: memlock unlimited and
#                   rtprio 99 for NAME (for [cpu] mlockall / sched_fifo)
#
# Housekeeping cores (where IRQs and the OS go) are the online cores that are not hot.
# Check the result with `ringmaker doctor --config FILE`.
set -euo pipefail

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  printf 'apply-runbook: %s\n' "$1" >&2
  exit "${2:-2}"
}

mode=dry-run
config=""
cores=""
user=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) mode=dry-run ;;
    --apply) mode=apply ;;
    --config)
      [ $# -ge 2 ] || die "--config needs a file"
      config=$2
      shift
      ;;
    --cores)
      [ $# -ge 2 ] || die "--cores needs a CPU list"
      cores=$2
      shift
      ;;
    --user)
      [ $# -ge 2 ] || die "--user needs a user name"
      user=$2
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

if [ -n "$config" ] && [ -n "$cores" ]; then
  die "give --config or --cores, not both"
fi
if [ -n "$user" ] && ! [[ "$user" =~ ^[a-z_][a-z0-9_-]*[$]?$ ]]; then
  die "--user: not a user name: $user"
fi
if [ "$mode" = apply ] && [ "$(id -u)" -ne 0 ]; then
  die "--apply changes kernel settings and needs root (run it with sudo); --dry-run shows what it would do" 1
fi

# A kernel CPU list (`0-3,5`) → one core per line; exits 2 on anything else.
expand_list() {
  local list=$1 part a b c
  [ -n "$list" ] || return 0
  local IFS=,
  for part in $list; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=${BASH_REMATCH[1]}
      b=${BASH_REMATCH[2]}
      [ "$a" -le "$b" ] || die "bad CPU range: $part"
      for ((c = a; c <= b; c++)); do printf '%s\n' "$c"; done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      printf '%s\n' "$part"
    else
      die "bad CPU list: $list"
    fi
  done
}

# Cores, one per line → the kernel's list form (`0-3,5`).
compress_list() {
  local out="" start="" prev="" c
  while read -r c; do
    if [ -z "$start" ]; then
      start=$c
    elif [ "$c" -ne $((prev + 1)) ]; then
      out+="${out:+,}$start$([ "$start" = "$prev" ] || printf -- '-%s' "$prev")"
      start=$c
    fi
    prev=$c
  done
  if [ -n "$start" ]; then
    out+="${out:+,}$start$([ "$start" = "$prev" ] || printf -- '-%s' "$prev")"
  fi
  printf '%s' "$out"
}

# The hot cores of a ringmaker config's [cpu]: `engine = N`, `feeds = [N, ...]`, `gateway = N`
# read line by line inside the [cpu] table (the form configs/ and the README use); a config
# without [cpu] runs the defaults.
config_cores() {
  local file=$1
  [ -r "$file" ] || die "cannot read config $file"
  if ! grep -Eq '^[[:space:]]*\[cpu\][[:space:]]*(#.*)?$' "$file"; then
    printf '2\n3\n4\n'
    return
  fi
  awk '
    /^[[:space:]]*\[/ { in_cpu = ($0 ~ /^[[:space:]]*\[cpu\][[:space:]]*(#.*)?$/); next }
    in_cpu {
      line = $0
      sub(/#.*/, "", line)
      if (line ~ /^[[:space:]]*(engine|gateway)[[:space:]]*=/ ||
          line ~ /^[[:space:]]*feeds[[:space:]]*=/) {
        sub(/^[^=]*=/, "", line)
        gsub(/[][[:space:]]/, "", line)
        n = split(line, v, ",")
        for (i = 1; i <= n; i++) if (v[i] != "") print v[i]
      }
    }' "$file"
}

if [ -n "$cores" ]; then
  hot=$(expand_list "$cores" | sort -n -u)
elif [ -n "$config" ]; then
  hot=$(config_cores "$config" | sort -n -u)
else
  die "say which cores are hot: --config FILE or --cores LIST (see --help)"
fi
[ -n "$hot" ] || die "no hot cores (engine, feeds, gateway) found"
while read -r c; do
  [[ "$c" =~ ^[0-9]+$ ]] || die "not a core number in the config's [cpu]: $c"
done <<<"$hot"

online_list=$(cat /sys/devices/system/cpu/online 2>/dev/null || true)
[ -n "$online_list" ] || die "cannot read /sys/devices/system/cpu/online"
online=$(expand_list "$online_list")
while read -r c; do
  grep -qx "$c" <<<"$online" || die "hot core $c is not online here (online: $online_list)"
done <<<"$hot"
housekeeping=$(grep -vxF -f <(printf '%s\n' "$hot") <<<"$online" || true)
[ -n "$housekeeping" ] || die "every online core ($online_list) is hot: nothing left for housekeeping and IRQs"
hot_list=$(compress_list <<<"$hot")
hk_list=$(compress_list <<<"$housekeeping")

# Runs (or, in a dry run, prints) one command, given as a single shell string.
run() {
  printf '  %s\n' "$1"
  if [ "$mode" = apply ]; then
    if ! bash -c "$1"; then
      printf '    (failed: left as it was)\n'
    fi
  fi
}

# `current value` of a file for the record, for undoing.
was() {
  if [ -r "$1" ]; then tr -d '\n' <"$1"; else printf 'unreadable'; fi
}

printf '# apply-runbook: %s; hot cores %s, housekeeping %s (online %s)\n' \
  "$mode" "$hot_list" "$hk_list" "$online_list"
[ "$mode" = apply ] || printf '# dry run: nothing below is executed (--apply does, as root)\n'

printf '\n# 1. CPU frequency governor -> performance (undo: write the old governor back)\n'
found=0
for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do
  [ -e "$f" ] || continue
  found=1
  printf '  # %s was: %s\n' "$f" "$(was "$f")"
  run "echo performance > '$f'"
done
[ "$found" = 1 ] || printf '  # no cpufreq on this host (a VM, or firmware-managed): nothing to set\n'

printf '\n# 2. Transparent huge pages -> never (undo: echo madvise, or the old value, back)\n'
thp=/sys/kernel/mm/transparent_hugepage
if [ -e "$thp/enabled" ]; then
  for f in "$thp/enabled" "$thp/defrag"; do
    [ -e "$f" ] || continue
    printf '  # %s was: %s\n' "$f" "$(was "$f")"
    run "echo never > '$f'"
  done
else
  printf '  # no %s: kernel without THP\n' "$thp"
fi

printf '\n# 3. Stop irqbalance, which moves IRQs onto any core (undo: systemctl start irqbalance)\n'
if pgrep -x irqbalance >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1; then
    run "systemctl stop irqbalance"
    printf '  # to keep it off across reboots: systemctl disable irqbalance\n'
  else
    run "pkill -x irqbalance"
  fi
else
  printf '  # irqbalance is not running: nothing to stop\n'
fi

printf '\n# 4. IRQ affinity -> housekeeping cores %s (undo: write each IRQ'"'"'s old list back)\n' "$hk_list"
for f in /proc/irq/[0-9]*/smp_affinity_list; do
  [ -e "$f" ] || continue
  old=$(was "$f")
  [ "$old" = "$hk_list" ] && continue
  printf '  # %s was: %s\n' "$f" "$old"
  run "echo $hk_list > '$f'"
done
if [ -e /proc/irq/default_smp_affinity ]; then
  mask=0
  max=$(tail -n 1 <<<"$housekeeping")
  # A hex mask; past 32 cores the kernel wants comma-separated 32-bit words.
  if [ "$max" -lt 32 ]; then
    while read -r c; do mask=$((mask | (1 << c))); done <<<"$housekeeping"
    printf '  # /proc/irq/default_smp_affinity was: %s\n' "$(was /proc/irq/default_smp_affinity)"
    run "echo $(printf '%x' "$mask") > /proc/irq/default_smp_affinity"
  else
    printf '  # default_smp_affinity: housekeeping cores past 31, write its mask by hand\n'
  fi
fi
printf '  # some IRQs (per-CPU timers, managed NIC queues) refuse a new affinity: that is expected\n'

printf '\n# 5. Deep C-states: /dev/cpu_dma_latency (nothing to run here)\n'
printf '  # holding /dev/cpu_dma_latency open with 0 written keeps cores out of deep idle for as\n'
printf '  # long as it stays open, e.g. in the shell that starts ringmaker (as root):\n'
printf "  #   exec 3>/dev/cpu_dma_latency; printf '\\\\x00\\\\x00\\\\x00\\\\x00' >&3\n"
printf '  # or boot with intel_idle.max_cstate=1 processor.max_cstate=1 (below)\n'

printf '\n# 6. Locked memory and real-time priority limits (undo: delete the file)\n'
if [ -n "$user" ]; then
  limits=/etc/security/limits.d/90-ringmaker.conf
  run "printf '%s\\n' '$user - memlock unlimited' '$user - rtprio 99' > '$limits'"
  printf '  # takes effect at %s'"'"'s next login; a systemd unit needs LimitMEMLOCK=infinity LimitRTPRIO=99\n' "$user"
else
  printf '  # pass --user NAME to write /etc/security/limits.d/90-ringmaker.conf (memlock unlimited,\n'
  printf '  # rtprio 99) for [cpu] mlockall = true / sched_fifo = true\n'
fi

printf '\n# 7. Kernel command line (not applied: add it to the boot loader, then reboot)\n'
printf '  isolcpus=%s nohz_full=%s rcu_nocbs=%s irqaffinity=%s intel_idle.max_cstate=1 processor.max_cstate=1 transparent_hugepage=never\n' \
  "$hot_list" "$hot_list" "$hot_list" "$hk_list"
printf '  # e.g. GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub (Debian) or\n'
printf '  # grubby --update-kernel=ALL --args="..." (Fedora/RHEL); undo: remove them the same way\n'
printf '\n# then: ringmaker doctor --config FILE\n'
