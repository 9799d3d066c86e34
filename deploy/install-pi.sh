#!/usr/bin/env bash
# Install (or update) Vanity on Raspberry Pi OS Bookworm (Python 3.11) or Trixie (Python 3.13).
#
#   sudo deploy/install-pi.sh                        # from this source tree (pip install .)
#   sudo deploy/install-pi.sh --wheel dist/vanity-0.1.0-py3-none-any.whl
#   sudo deploy/install-pi.sh --kiosk-user pi        # + full-screen browser for that desktop user
#   deploy/install-pi.sh --dry-run ...               # print what would be done, change nothing
#
# Options:
#   --wheel PATH        install this wheel (repeatable) instead of the source tree
#   --kiosk-user USER   desktop user who shows the page (default: $SUDO_USER, else the user with UID 1000)
#   --no-kiosk          daemon only (headless, or another browser)
#   --autologin         turn on desktop autologin and off screen blanking (raspi-config)
#   --no-start          install and enable, but do not (re)start anything
#   --dry-run           print the commands that change the system instead of running them
#
# Safe to run again: every step checks what is already there; an existing
# /etc/vanity/vanity.toml is never overwritten (the new sample goes next to it).
# Needs the network for apt and PyPI. The runtime only: no TensorFlow.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/vanity
VENV=$PREFIX/.venv
CONF_DIR=/etc/vanity
UNIT_DIR=/etc/systemd/system
SVC_USER=vanity
URL=http://127.0.0.1:8080

WHEELS=()
KIOSK=yes
KIOSK_USER=""
AUTOLOGIN=no
START=yes
DRY_RUN=no

log() { printf '==> %s\n' "$*"; }
warn() { printf 'install-pi: warning: %s\n' "$*" >&2; }
die() { printf 'install-pi: error: %s\n' "$*" >&2; exit 1; }

# Runs a command that changes the system (only printed with --dry-run).
run() {
    if [[ $DRY_RUN == yes ]]; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --wheel) [[ $# -ge 2 ]] || die "--wheel needs a path"; WHEELS+=("$(realpath "$2")"); shift 2 ;;
        --kiosk-user) [[ $# -ge 2 ]] || die "--kiosk-user needs a user name"; KIOSK_USER=$2; shift 2 ;;
        --no-kiosk) KIOSK=no; shift ;;
        --autologin) AUTOLOGIN=yes; shift ;;
        --no-start) START=no; shift ;;
        --dry-run) DRY_RUN=yes; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# ------------------------------------------------------------------ preflight
[[ $DRY_RUN == yes || $(id -u) -eq 0 ]] || die "run as root: sudo $0 $*"
for f in systemd/vanity.service systemd/vanity-kiosk@.service systemd/vanity-kiosk-browser deploy/vanity.toml; do
    [[ -f $SRC/$f ]] || die "$SRC/$f missing: run this script from a Vanity source tree or release bundle"
done
for w in "${WHEELS[@]}"; do
    [[ -f $w ]] || die "wheel $w not found"
done

codename=unknown
if [[ -r /etc/os-release ]]; then
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-unknown}")
fi
case $codename in
    bookworm | trixie) ;;
    *) warn "tested on Raspberry Pi OS bookworm and trixie, this is '$codename'" ;;
esac
[[ $(uname -m) == aarch64 ]] || warn "not a 64-bit ARM system ($(uname -m)): fine for testing, a Pi needs the 64-bit OS"

if [[ $KIOSK == yes && -z $KIOSK_USER ]]; then
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        KIOSK_USER=$SUDO_USER
    else
        KIOSK_USER=$(getent passwd 1000 | cut -d: -f1 || true)
    fi
    [[ -n $KIOSK_USER ]] || { warn "no desktop user found: skipping the kiosk (use --kiosk-user)"; KIOSK=no; }
fi
if [[ $KIOSK == yes ]]; then
    KIOSK_UID=$(id -u "$KIOSK_USER" 2>/dev/null) || die "kiosk user '$KIOSK_USER' does not exist"
    [[ $KIOSK_UID -ne 0 ]] || die "the kiosk browser runs as the desktop user, not root (--kiosk-user USER or --no-kiosk)"
fi

# ------------------------------------------------------------------ packages
# The first installable name of a package (Bookworm: chromium-browser is the Pi build).
# LC_ALL=C: apt translates "Candidate:". The output is read whole, not piped into grep -q,
# which would stop reading early and fail the pipeline (pipefail) with apt-cache's SIGPIPE.
apt_candidate() {
    local p policy
    for p in "$@"; do
        policy=$(LC_ALL=C apt-cache policy "$p" 2>/dev/null) || continue
        if [[ $policy =~ Candidate:\ [^\(] ]]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

log "apt packages"
if [[ $DRY_RUN == no ]]; then
    apt-get update -qq
fi
pkgs=(python3 python3-venv python3-pip curl ca-certificates)
if cam=$(apt_candidate python3-picamera2); then
    pkgs+=("$cam")
else
    warn "python3-picamera2 is not in the apt sources (not Raspberry Pi OS?): only USB (v4l2) cameras will work"
fi
if [[ $KIOSK == yes ]]; then
    if [[ $codename == bookworm ]]; then
        order=(chromium-browser chromium)
    else
        order=(chromium chromium-browser)
    fi
    if ! browser=$(apt_candidate "${order[@]}"); then
        [[ $DRY_RUN == yes ]] || die "no chromium package in the apt sources"
        warn "no chromium package in the apt sources (dry run: assuming ${order[0]})"
        browser=${order[0]}
    fi
    pkgs+=("$browser")
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "all present: ${pkgs[*]}"
fi

# ------------------------------------------------------------------ user
log "system user $SVC_USER"
if ! id "$SVC_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir /var/lib/vanity --no-create-home \
        --shell /usr/sbin/nologin --comment "Vanity mirror" "$SVC_USER"
fi
for g in video render; do
    if getent group "$g" >/dev/null && ! id -nG "$SVC_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$g"; then
        run usermod -a -G "$g" "$SVC_USER"
    fi
done

# ------------------------------------------------------------------ venv + wheels
log "Python environment $VENV"
sys_py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ -x $VENV/bin/python ]]; then
    venv_py=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo broken)
    if [[ $venv_py != "$sys_py" ]]; then
        warn "venv is Python $venv_py, system is $sys_py (OS upgrade?): recreating it"
        run rm -rf "$VENV"
    fi
fi
run install -d -m 0755 "$PREFIX" "$PREFIX/bin"
if [[ ! -x $VENV/bin/python ]]; then
    # --system-site-packages: picamera2/libcamera come from apt, not from PyPI.
    run python3 -m venv --system-site-packages "$VENV"
fi
if [[ ${#WHEELS[@]} -gt 0 ]]; then
    targets=("${WHEELS[@]}")
else
    targets=("$SRC")
fi
# The runtime only (no [train] extra, so no TensorFlow). --upgrade replaces an older Vanity.
# The compiled dependencies come as wheels only: should a new release lack an aarch64 wheel
# for this Python, pip takes the newest one that has it instead of compiling for an hour.
wheels_only=PIP_ONLY_BINARY=numpy,opencv-python-headless,ai-edge-litert,pydantic-core,ml-dtypes,simplejpeg
run env "$wheels_only" "$VENV/bin/python" -m pip install --upgrade --no-cache-dir --disable-pip-version-check --root-user-action=ignore "${targets[@]}"
if [[ -n ${cam:-} ]]; then
    # The apt simplejpeg that picamera2 imports is built for the system's numpy 1.x and
    # breaks ("numpy.dtype size changed") under the venv's numpy 2 (needed by OpenCV);
    # a PyPI simplejpeg, built for numpy 2, shadows it inside the venv.
    run env "$wheels_only" "$VENV/bin/python" -m pip install --upgrade --no-cache-dir --disable-pip-version-check --root-user-action=ignore "simplejpeg>=1.8.1"
fi
[[ $DRY_RUN == yes || -x $VENV/bin/vanity ]] || die "$VENV/bin/vanity missing after pip install"

# ------------------------------------------------------------------ configuration
log "configuration $CONF_DIR"
run install -d -m 0755 "$CONF_DIR"
if [[ -e $CONF_DIR/vanity.toml ]]; then
    echo "keeping $CONF_DIR/vanity.toml (new sample: $CONF_DIR/vanity.toml.sample)"
else
    run install -m 0640 -o root -g "$SVC_USER" "$SRC/deploy/vanity.toml" "$CONF_DIR/vanity.toml"
fi
run install -m 0644 "$SRC/deploy/vanity.toml" "$CONF_DIR/vanity.toml.sample"
run "$VENV/bin/vanity" config check "$CONF_DIR/vanity.toml"

# ------------------------------------------------------------------ units
log "systemd units"
run install -m 0644 "$SRC/systemd/vanity.service" "$UNIT_DIR/vanity.service"
run install -m 0644 "$SRC/systemd/vanity-kiosk@.service" "$UNIT_DIR/vanity-kiosk@.service"
run install -m 0755 "$SRC/systemd/vanity-kiosk-browser" "$PREFIX/bin/vanity-kiosk-browser"
run install -d -m 0755 "$PREFIX/examples"
for f in "$SRC"/systemd/vanity.service.d/*.conf.example; do
    run install -m 0644 "$f" "$PREFIX/examples/"
done
if [[ -f $SRC/deploy/README-deploy.md ]]; then
    run install -m 0644 "$SRC/deploy/README-deploy.md" "$PREFIX/README-deploy.md"
fi
run install -d -o "$SVC_USER" -g "$SVC_USER" -m 0700 /var/lib/vanity
run systemctl daemon-reload

# ------------------------------------------------------------------ doctor
log "vanity doctor (as $SVC_USER)"
if ! run runuser -u "$SVC_USER" -- "$VENV/bin/vanity" doctor --config "$CONF_DIR/vanity.toml"; then
    die "vanity doctor found a problem (above); fix it and run this script again"
fi

# ------------------------------------------------------------------ daemon
log "vanity.service"
run systemctl enable vanity.service
if [[ $START == yes ]]; then
    # restart, not start: an update must load the new code.
    run systemctl restart vanity.service
    if [[ $DRY_RUN == no ]]; then
        if curl -fsS -o /dev/null --max-time 2 --retry 30 --retry-delay 1 --retry-all-errors "$URL/healthz"; then
            echo "healthy: $URL/healthz"
        else
            warn "vanity.service is not healthy yet: journalctl -u vanity -n 50; curl $URL/healthz"
        fi
    fi
fi

# ------------------------------------------------------------------ kiosk
if [[ $KIOSK == yes ]]; then
    unit=vanity-kiosk@$KIOSK_UID.service
    log "$unit (desktop user $KIOSK_USER)"
    run systemctl enable "$unit"
    if [[ $AUTOLOGIN == yes ]]; then
        if command -v raspi-config >/dev/null 2>&1; then
            run raspi-config nonint do_boot_behaviour B4   # desktop, autologin
            run raspi-config nonint do_blanking 1          # screen blanking off
        else
            warn "--autologin needs raspi-config (Raspberry Pi OS)"
        fi
    fi
    if [[ $START == yes ]]; then
        if [[ -d /run/user/$KIOSK_UID ]]; then
            run systemctl restart "$unit"
        else
            echo "$KIOSK_USER is not logged in to the desktop: the kiosk starts at the next (auto)login"
        fi
    fi
fi

log "done"
cat <<EOF
  page:    $URL/  (on this device)
  logs:    journalctl -u vanity -f      status: systemctl status vanity
  config:  $CONF_DIR/vanity.toml, then: systemctl restart vanity
  extras:  $PREFIX/examples/*.conf.example (token, LAN access, hardening)
EOF
