#!/usr/bin/env bash
# Runs a command inside the emulated Raspberry Pi (an arm64 Debian root under qemu-user).
# Called by deploy/check_aarch64.py inside a private mount namespace (and, where the
# kernel allows it, a private user namespace with its own binfmt_misc), never directly:
#
#   enter.sh ROOT BINFMT CPUINFO [--bind SRC DST[:ro]]... -- COMMAND...
#
# BINFMT is "private" (mount binfmt_misc here and register qemu-aarch64-static for this
# namespace only) or "host" (the host already runs aarch64 ELF files through qemu).
# Every mount is private to the namespace and goes away with it.
set -euo pipefail

ROOT=$1 BINFMT=$2 CPUINFO=$3
shift 3
binds=()
while [[ $# -gt 0 && $1 != -- ]]; do
    [[ $1 == --bind && $# -ge 3 ]] || { echo "enter.sh: bad arguments near $1" >&2; exit 2; }
    binds+=("$2" "$3")
    shift 3
done
[[ ${1:-} == -- ]] && shift
[[ $# -gt 0 ]] || { echo "enter.sh: no command" >&2; exit 2; }

# Nothing mounted below leaks to the host, even through shared mount propagation.
mount --make-rprivate /

if [[ $BINFMT == private ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    # Magic and mask of a little-endian aarch64 ELF executable (as in qemu's binfmt.d file).
    # F: the kernel opens the interpreter now, so it need not exist inside the chroot.
    printf '%s' ':vanity-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
        >/proc/sys/fs/binfmt_misc/register
fi

mount --rbind /proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
# LiteRT's CPU probe reads /proc/cpuinfo; under qemu-user that is the host's x86 one, and
# the interpreter segfaults while it is created. A Pi's cpuinfo over it fixes that.
mount --bind "$CPUINFO" "$ROOT/proc/cpuinfo"
mount -t tmpfs -o size=512m tmpfs "$ROOT/tmp"

for ((i = 0; i < ${#binds[@]}; i += 2)); do
    src=${binds[i]} dst=${binds[i + 1]} ro=no
    if [[ $dst == *:ro ]]; then
        dst=${dst%:ro}
        ro=yes
    fi
    mkdir -p "$ROOT$dst"
    mount --bind "$src" "$ROOT$dst"
    [[ $ro == no ]] || mount -o remount,bind,ro "$ROOT$dst"
done

exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    TERM=dumb QEMU_CPU="${QEMU_CPU:-cortex-a72}" chroot "$ROOT" "$@"
