#!/usr/bin/env bash
# Offline checks of Vanity's systemd units (make systemd-check; tests/test_systemd.py).
#
#   systemd/check.sh            deps + verify + security
#   systemd/check.sh deps       only make sure systemd-analyze exists (apt-get install systemd as root)
#   systemd/check.sh verify     systemd-analyze verify of both units, alone and with every drop-in example
#   systemd/check.sh security   systemd-analyze security --offline: vanity.service exposure <= 2.5
#
# verify runs against a throw-away root (--root) holding the distribution's units,
# ours, and empty stand-ins for the programs our Exec lines name, so it needs no
# installed Vanity and touches nothing on this machine. Any warning fails.
# Exit codes: 0 OK, 1 check failed, 3 systemd-analyze unavailable.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAX_EXPOSURE=${VANITY_MAX_EXPOSURE:-2.5}
UNITS=(vanity.service vanity-kiosk@.service)
KIOSK_INSTANCE=vanity-kiosk@1000.service

die() { printf 'systemd-check: %s\n' "$*" >&2; exit "${2:-1}"; }

deps() {
    command -v systemd-analyze >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "systemd-check: systemd-analyze missing, installing the Debian package 'systemd'"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd >/dev/null; } ||
            die "apt-get install systemd failed" 3
        command -v systemd-analyze >/dev/null 2>&1 || die "systemd installed but systemd-analyze still missing" 3
    else
        die "systemd-analyze not found: install it as root with 'apt-get install systemd' (Debian/Raspberry Pi OS)" 3
    fi
}

# The distribution's unit directory (Debian 12: /lib -> /usr/lib).
system_unit_dir() {
    local d
    for d in /usr/lib/systemd/system /lib/systemd/system; do
        [[ -f $d/sysinit.target ]] && { printf '%s\n' "$d"; return 0; }
    done
    die "no systemd unit directory (sysinit.target) found" 3
}

# Build a root in $1 with the system units, ours (+ drop-ins if $2 = yes) and stub executables.
make_root() {
    local root=$1 dropins=$2 unit line exe
    mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
    cp -a "$(system_unit_dir)" "$root/usr/lib/systemd/system"
    for unit in "${UNITS[@]}"; do
        cp "$HERE/$unit" "$root/etc/systemd/system/"
    done
    if [[ $dropins == yes ]]; then
        mkdir -p "$root/etc/systemd/system/vanity.service.d"
        for line in "$HERE"/vanity.service.d/*.conf.example; do
            exe=${line##*/}
            cp "$line" "$root/etc/systemd/system/vanity.service.d/${exe%.example}"
        done
    fi
    # Every absolute program in an Exec*= line gets an empty executable stand-in.
    while IFS= read -r exe; do
        [[ -e $root$exe ]] && continue
        mkdir -p "$root$(dirname "$exe")"
        printf '#!/bin/sh\nexit 0\n' >"$root$exe"
        chmod 0755 "$root$exe"
    done < <(for unit in "${UNITS[@]}"; do
        sed -nE 's/^Exec[A-Za-z]*=[-@:+!]*(\/[^[:space:]]+).*/\1/p' "$HERE/$unit"
    done | sort -u)
}

verify() {
    local tmp out rc pass
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" RETURN
    for pass in no yes; do
        rm -rf "${tmp:?}/root"
        make_root "$tmp/root" "$pass"
        rc=0
        out=$(systemd-analyze verify --man=no --root="$tmp/root" vanity.service "$KIOSK_INSTANCE" 2>&1) || rc=$?
        if [[ $rc -ne 0 || -n $out ]]; then
            printf '%s\n' "$out" >&2
            die "systemd-analyze verify failed (drop-in examples: $pass, exit $rc)"
        fi
        echo "verify OK: vanity.service $KIOSK_INSTANCE (drop-in examples: $pass)"
    done
}

security() {
    local out rc level threshold
    # --threshold is an integer on systemd's 0-100 scale (2.5 -> 25).
    threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 + 0.5 }')
    rc=0
    out=$(systemd-analyze security --offline=true --threshold="$threshold" "$HERE/vanity.service" 2>&1) || rc=$?
    level=$(printf '%s\n' "$out" | sed -nE 's/.*Overall exposure level for vanity\.service: ([0-9.]+).*/\1/p')
    [[ -n $level ]] || { printf '%s\n' "$out" >&2; die "no 'Overall exposure level' line from systemd-analyze security"; }
    echo "exposure vanity.service: $level (max $MAX_EXPOSURE)"
    if [[ $rc -ne 0 ]] || awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l > m) }'; then
        printf '%s\n' "$out" | grep '✗' >&2 || true
        die "vanity.service exposure $level is over $MAX_EXPOSURE"
    fi
}

case ${1:-all} in
    deps) deps ;;
    verify) deps && verify ;;
    security) deps && security ;;
    all) deps && verify && security ;;
    *) die "usage: $0 [all|deps|verify|security]" 2 ;;
esac
