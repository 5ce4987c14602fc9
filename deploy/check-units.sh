#!/bin/sh
# Checks the systemd units: ExecStopPost= runs `massaged outputs-off` with the unit's
# config, exposure level at most MAX_EXPOSURE (default 2.0) from
# `systemd-analyze security --offline=true`, and `systemd-analyze verify` against a
# throw-away root (skipped when verify cannot work here).
# Usage: deploy/check-units.sh            (from the repository root or anywhere)
# Needs systemd-analyze (Debian: apt-get install -y systemd).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
max=${MAX_EXPOSURE:-2.0}
units="massaged.service massaged@.service"
status=0

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-units: systemd-analyze not found (apt-get install -y systemd)" >&2
    exit 2
fi

# Outputs off after every exit: ExecStopPost= runs `massaged outputs-off` with the same
# --config as ExecStart= (SIGKILL and watchdog aborts leave PWM duty cycles where they were).
for unit in $units; do
    start_config=$(sed -n 's/^ExecStart=.* run --config \([^ ]*\).*/\1/p' "$here/$unit")
    post=$(sed -n 's/^ExecStopPost=//p' "$here/$unit")
    if [ "$post" = "/usr/bin/massaged outputs-off --config $start_config" ] && [ -n "$start_config" ]; then
        echo "ok   $unit: ExecStopPost=$post"
    else
        echo "FAIL $unit: ExecStopPost= must be '/usr/bin/massaged outputs-off --config $start_config', found '$post'" >&2
        status=1
    fi
done

# Exposure: the last line reads "→ Overall exposure level for NAME: 1.5 OK 🙂".
for unit in $units; do
    out=$(systemd-analyze security --offline=true --no-pager "$here/$unit" 2>&1) || {
        echo "$out" >&2
        echo "FAIL $unit: systemd-analyze security failed" >&2
        status=1
        continue
    }
    level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
    if [ -z "$level" ]; then
        echo "$out" >&2
        echo "FAIL $unit: no \"Overall exposure level\" line" >&2
        status=1
    elif awk -v l="$level" -v m="$max" 'BEGIN { exit !(l > m) }'; then
        printf '%s\n' "$out" | grep -v '✓' >&2
        echo "FAIL $unit: exposure $level > $max" >&2
        status=1
    else
        echo "ok   $unit: exposure $level (max $max)"
    fi
done

# verify checks syntax, unknown options and that ExecStart= is executable, so it runs
# against a temporary root holding the system's units, a stub binary and our units.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/etc/systemd/system" "$root/lib/systemd"
printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/massaged"
chmod 755 "$root/usr/bin/massaged"
if [ -d /lib/systemd/system ]; then
    cp -R /lib/systemd/system "$root/lib/systemd/"
fi
cp "$here/massaged.service" "$here/massaged@.service" "$root/etc/systemd/system/"
if ! systemd-analyze verify --root="$root" sysinit.target >/dev/null 2>&1; then
    echo "skip verify: systemd-analyze verify does not work offline here"
else
    for unit in massaged.service massaged@check.service; do
        if out=$(systemd-analyze verify --root="$root" "$unit" 2>&1) && [ -z "$out" ]; then
            echo "ok   $unit: verify"
        else
            echo "$out" >&2
            echo "FAIL $unit: systemd-analyze verify" >&2
            status=1
        fi
    done
fi

exit $status
