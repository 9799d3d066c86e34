#!/usr/bin/env python3
"""`make check-aarch64`: the device path on an emulated Raspberry Pi (64-bit ARM).

Builds, from the package registries only, a Debian arm64 root (debootstrap, Python from
Debian) and a venv in it holding the aarch64 wheels of the project's plain install; caches
both; then, under qemu-user showing a Pi 4's (or Pi 5's) CPU:

- installs this tree's wheel into that venv, as deploy/install-pi.sh does on a Pi;
- runs the golden tests' photos through `vanity analyze` there and here (x86, the current
  venv) with whatever detector and bundle the configuration defaults to, and requires the
  same faces and >= 99.5 % of pixels with the same label;
- loads the default bundle with the aarch64 LiteRT explicitly, runs `vanity doctor` and
  `vanity bench --frames 30`;
- runs `deploy/install-pi.sh --dry-run` in the root and checks what it would install.

Needs root, qemu-user-static and debootstrap (installed with apt-get when missing), and a
private mount namespace; where the kernel allows it (Linux >= 6.7) the binfmt_misc
registration is private too, otherwise the host's qemu-aarch64 registration is used.

    deploy/check_aarch64.py [check]      # the whole check (what make check-aarch64 runs)
    deploy/check_aarch64.py probe        # can this machine run it? exit 0, or 3 and why not
    deploy/check_aarch64.py shell [-- CMD...]  # a shell (or CMD) on the emulated Pi
    deploy/check_aarch64.py build        # only build the cached root, wheels and venv

The cache lives in $VANITY_AARCH64_CACHE (default ~/.cache/vanity-aarch64), outside the
clone so that CI's fresh clones find it warm; each part is keyed by what it is built from
and rebuilt when that changes. The run's files (images, labels, logs, summary.json) go to
.cache/check-aarch64/ in the tree.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "aarch64"
CACHE = Path(os.environ.get("VANITY_AARCH64_CACHE") or Path.home() / ".cache" / "vanity-aarch64")
RUN = ROOT / ".cache" / "check-aarch64"
MIRROR = os.environ.get("VANITY_DEBIAN_MIRROR", "http://deb.debian.org/debian")

RECIPE = 1
"""Bumped when the way the root or the venv is built changes (invalidates the cache)."""

SUITES = {"bookworm": "3.11", "trixie": "3.13"}
"""Debian release -> its python3 (Raspberry Pi OS follows Debian's)."""

CPUS = {"pi4": ("cortex-a72", HERE / "cpuinfo-pi4"), "pi5": ("cortex-a76", HERE / "cpuinfo-pi5")}

INCLUDE = ["python3", "python3-venv", "ca-certificates", "passwd"]
"""Debian packages besides minbase: what deploy/install-pi.sh expects a Pi to have."""

PLATFORMS = ["manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64", "manylinux_2_17_aarch64"]
"""The wheel tags pip accepts on a Pi's glibc (2.36 on Bookworm) that PyPI projects publish."""

AGREEMENT = 0.995
"""Fraction of pixels whose aarch64 label must equal the x86 one, per image."""

VENV = "/opt/vanity/.venv"  # where deploy/install-pi.sh puts it
PI_PIP_INSTALL = (f"{VENV}/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "--no-index")
"""The Pi's own pip, offline: it installs only the wheels the check put there."""
NICE = 15  # the machine is shared: emulation and builds yield to other work
WHEELS_DAYS = float(os.environ.get("VANITY_AARCH64_WHEELS_DAYS", "7"))
"""Age after which the wheel set is resolved again from PyPI."""


class Skip(Exception):
    """This machine cannot run the check (not a failure of the project)."""


class Failed(Exception):
    """The check ran and found a problem."""


def log(msg: str) -> None:
    print(f"[check-aarch64] {msg}", flush=True)


def key_of(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def niced(cmd: list[str]) -> list[str]:
    return ["nice", "-n", str(NICE), *cmd]


def sh(cmd: list[str], *, log_to: Path | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Runs a command; with log_to its output goes to that file (and its tail into the error)."""
    if log_to is None:
        r = subprocess.run(cmd, **kw)
    else:
        log_to.parent.mkdir(parents=True, exist_ok=True)
        with open(log_to, "w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)
    if check and r.returncode != 0:
        tail = ""
        if log_to is not None:
            tail = "\n" + "\n".join(log_to.read_text(errors="replace").splitlines()[-25:])
        raise Failed(f"{shlex.join(cmd[:8])}{' ...' if len(cmd) > 8 else ''} exited {r.returncode}{tail}")
    return r


# ---------------------------------------------------------------------- namespaces

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")


def ns_main(mode: str, argv: list[str]) -> int:
    """Runs argv in a private mount namespace; with mode "private" also in a user namespace
    mapping uids/gids 0-65535 to themselves (so the root's files keep their owners), whose
    binfmt_misc is its own. Returns argv's exit status."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _unshare(CLONE_NEWNS | (CLONE_NEWUSER if mode == "private" else 0))
            os.write(w1, b"1")
            os.read(r2, 1)
            if mode == "private":
                os.setgid(0)
                os.setuid(0)
            os.execvp(argv[0], argv)
        except BaseException as e:  # the child must never return into the caller
            print(f"check-aarch64: cannot enter the namespace: {e}", file=sys.stderr)
        os._exit(126)
    os.close(w1)
    if not os.read(r1, 1):
        os.waitpid(pid, 0)
        return 126
    if mode == "private":
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("0 0 65536\n")
    os.write(w2, b"1")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def host_binfmt() -> bool:
    """The host already runs aarch64 ELF files through a static qemu (F flag) — e.g. Debian's
    qemu-user-static with binfmt-support or systemd-binfmt."""
    d = Path("/proc/sys/fs/binfmt_misc")
    for entry in d.glob("*aarch64*") if d.is_dir() else []:
        with contextlib.suppress(OSError):
            text = entry.read_text()
            if text.startswith("enabled") and "flags: " in text and "F" in text.split("flags: ")[1].split()[0]:
                return True
    return False


def probe() -> str:
    """How this machine can run the emulated Pi: "private" or "host" binfmt; raises Skip."""
    if platform.system() != "Linux":
        raise Skip(f"needs Linux, this is {platform.system()}")
    if os.geteuid() != 0:
        raise Skip("needs root (debootstrap, mount namespaces, bind-mounting /proc/cpuinfo)")
    if platform.machine() == "aarch64":
        raise Skip("this machine is aarch64 itself: run the test suite here instead")
    if shutil.which("unshare") is None:
        raise Skip("unshare (util-linux) is missing")
    test = "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && test -w /proc/sys/fs/binfmt_misc/register"
    r = subprocess.run(
        [sys.executable, __file__, "_ns", "private", "--", "sh", "-c", test], capture_output=True, text=True
    )
    if r.returncode == 0:
        return "private"
    why = (r.stderr.strip().splitlines() or ["binfmt_misc not mountable"])[-1]
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        raise Skip("unshare -m (a private mount namespace) is not allowed here")
    if host_binfmt():
        return "host"
    raise Skip(
        f"no way to run aarch64 binaries: a private binfmt_misc needs Linux >= 6.7 ({why}), "
        "and the host has no qemu-aarch64 binfmt entry with the F flag"
    )


def ensure_host_tools() -> None:
    missing = [
        p
        for p, exe in (("debootstrap", "debootstrap"), ("qemu-user-static", "qemu-aarch64-static"))
        if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists()
    ]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise Skip(f"missing {', '.join(missing)} and no apt-get to install them")
    log(f"installing {', '.join(missing)} (Debian packages)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh(["apt-get", "update", "-qq"], log_to=RUN / "logs" / "host-apt.log", env=env)
    sh(["apt-get", "install", "-y", "-qq", *missing], log_to=RUN / "logs" / "host-apt.log", env=env)


class Pi:
    """The emulated Pi: a root directory, how to reach binfmt, which CPU to show."""

    def __init__(self, root: Path, mode: str, cpu: str = "pi4"):
        self.root, self.mode = root, mode
        self.qemu_cpu, self.cpuinfo = CPUS[cpu]
        self.binds: list[tuple[Path, str]] = []

    def bind(self, src: Path, dst: str, ro: bool = False) -> Pi:
        self.binds.append((Path(src), dst + (":ro" if ro else "")))
        return self

    def argv(self, cmd: list[str]) -> list[str]:
        inner = ["bash", str(HERE / "enter.sh"), str(self.root), self.mode, str(self.cpuinfo)]
        for src, dst in self.binds:
            inner += ["--bind", str(src), dst]
        return niced([sys.executable, __file__, "_ns", self.mode, "--", *inner, "--", *cmd])

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        env = dict(os.environ, QEMU_CPU=self.qemu_cpu)
        return sh(self.argv(cmd), env=env, **kw)


# ---------------------------------------------------------------------- the cached parts


@contextlib.contextmanager
def locked():
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def prune(prefix: str, keep: Path) -> None:
    """Removes older builds of one part (the cache holds one of each)."""
    for old in CACHE.glob(prefix + "*"):
        if old != keep and old.is_dir():
            log(f"removing stale {old.name}")
            shutil.rmtree(old, ignore_errors=True)


def build_root(suite: str, mode: str) -> Path:
    """Debian `suite` for arm64, minbase + INCLUDE, fully installed (dpkg configured, apt lists
    present, a desktop user with UID 1000 as on Raspberry Pi OS)."""
    key = key_of(RECIPE, suite, INCLUDE, MIRROR)
    dest = CACHE / f"root-{suite}-{key}"
    if (dest / ".vanity-ok").exists():
        return dest
    tmp = CACHE / f"tmp-root-{suite}"
    shutil.rmtree(tmp, ignore_errors=True)
    logs = RUN / "logs"
    t0 = time.monotonic()
    log(f"building the {suite} arm64 root (debootstrap, first stage) -> {dest}")
    sh(
        niced(
            [
                "debootstrap",
                "--foreign",
                "--arch=arm64",
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                suite,
                str(tmp),
                MIRROR,
            ]
        ),
        log_to=logs / f"debootstrap-{suite}.log",
    )
    # In a container debootstrap makes /proc a symlink to the host's; the chroot needs a mount point.
    for d in ("proc", "sys", "dev", "tmp"):
        p = tmp / d
        if p.is_symlink():
            p.unlink()
        p.mkdir(exist_ok=True)
    shutil.copy("/etc/resolv.conf", tmp / "etc" / "resolv.conf")
    pi = Pi(tmp, mode)
    log("second stage under qemu (dpkg configures every package; the slow part of a cold cache)")
    # container=lxc: debootstrap's mknod test of the target fails in a user namespace.
    pi.run(
        ["env", "container=lxc", "/debootstrap/debootstrap", "--second-stage"],
        log_to=logs / f"second-stage-{suite}.log",
    )
    log("apt-get update in the root (install-pi.sh --dry-run reads the package lists)")
    pi.run(["apt-get", "update", "-q"], log_to=logs / f"apt-update-{suite}.log")
    pi.run(["apt-get", "clean"], log_to=logs / f"apt-clean-{suite}.log")
    pi.run(
        ["useradd", "--create-home", "--uid", "1000", "--user-group", "--shell", "/bin/bash", "pi"],
        log_to=logs / f"useradd-{suite}.log",
    )
    (tmp / ".vanity-ok").write_text(f"{suite} {key} built in {time.monotonic() - t0:.0f} s\n")
    prune(f"root-{suite}-", tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    log(f"root ready in {time.monotonic() - t0:.0f} s")
    return dest


def runtime_requirements() -> list[str]:
    """The plain install's requirements (the device runtime), as pyproject.toml states them."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def download_wheels(py: str) -> Path:
    """The aarch64 wheels of the plain install, from PyPI, for CPython `py`.

    Resolved again once the set is WHEELS_DAYS old, so the check follows what a Pi installing
    today gets; the venv is rebuilt only when the resolved files changed."""
    reqs = runtime_requirements()
    tag = f"cp{py.replace('.', '')}"
    dest = CACHE / f"wheels-{tag}-{key_of(RECIPE, py, PLATFORMS, reqs)}"
    ok = dest / ".vanity-ok"
    if ok.exists() and time.time() - ok.stat().st_mtime < WHEELS_DAYS * 86400:
        return dest
    tmp = CACHE / f"tmp-wheels-{tag}"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"resolving the aarch64 wheels for Python {py} (pip download --platform ...)")
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(tmp)]
    cmd += ["--only-binary=:all:", *plat, "--python-version", py, "--implementation", "cp", *reqs]
    try:
        sh(niced(cmd), log_to=RUN / "logs" / f"pip-download-{tag}.log")
    except Failed:
        if not ok.exists():
            raise
        log(f"pip download failed (logs in {RUN}): keeping the wheels of {time.ctime(ok.stat().st_mtime)}")
        return dest
    listing = "\n".join(sorted(p.name for p in tmp.glob("*.whl"))) + "\n"
    if ok.exists() and ok.read_text() == listing:
        ok.touch()
        shutil.rmtree(tmp)
        return dest
    (tmp / ".vanity-ok").write_text(listing)
    prune(f"wheels-{tag}-", tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_venv(root: Path, wheels: Path, mode: str, suite: str) -> Path:
    """A venv at /opt/vanity/.venv in the root (as install-pi.sh makes it) with the runtime
    requirements installed by the emulated Pi's own pip from the downloaded wheels (so
    environment markers are evaluated on aarch64, and nothing else can be fetched)."""
    key = key_of(RECIPE, root.name, (wheels / ".vanity-ok").read_text())
    dest = CACHE / f"venv-{suite}-{key}"
    if (dest / ".vanity-ok").exists():
        return dest
    tmp = CACHE / f"tmp-venv-{suite}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log("creating the venv and installing the wheels with the Pi's own pip (under qemu)")
    pi = Pi(root, mode).bind(tmp, VENV).bind(wheels, "/mnt/wheels", ro=True)
    pi.run(["python3", "-m", "venv", "--system-site-packages", VENV], log_to=RUN / "logs" / f"venv-{suite}.log")
    pi.run(
        [
            *PI_PIP_INSTALL,
            "--find-links",
            "/mnt/wheels",
            *runtime_requirements(),
        ],
        log_to=RUN / "logs" / f"venv-install-{suite}.log",
    )
    freeze = pi.run([f"{VENV}/bin/python", "-m", "pip", "freeze", "--local"], capture_output=True, text=True).stdout
    (tmp / ".vanity-ok").write_text(freeze)
    prune(f"venv-{suite}-", tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


# ---------------------------------------------------------------------- the check


def golden_images(out: Path, which: str = "golden") -> dict[str, Path]:
    """The golden tests' photos as PNG files; with which="all" also the rolled, close and
    half-size views test_golden.py makes of them (the still search and the false-face guard)."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from training.real import allowed_photos

    photos = allowed_photos()
    views: dict[str, np.ndarray] = dict(photos)
    if which == "all":
        try:  # the views test_golden.py makes, where it still describes them
            from tests.test_golden import LIPS
        except ImportError as e:
            log(f"no rolled or close views: {e}")
            LIPS = {}  # noqa: N806
        for name, ((x0, x1, _, _), (cx, cy)) in LIPS.items():
            img = photos[name]
            m = cv2.getRotationMatrix2D((cx, cy), -40.0, 1.0)
            views[f"{name}_rolled"] = cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            half = int(1.6 * (x1 - x0))
            top, left = int(cy) - int(1.2 * half), int(cx) - half
            views[f"{name}_close"] = np.ascontiguousarray(img[top : top + 2 * half, left : left + 2 * half])
        views["astronaut_half"] = cv2.resize(photos["astronaut"], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, img in sorted(views.items()):
        p = out / f"{name}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths[name] = p
    return paths


def build_project_wheel(out: Path) -> Path:
    """This tree's wheel, built from a clean copy (setuptools' build/ would keep deleted modules)."""
    shutil.rmtree(out, ignore_errors=True)
    src = out / "src"
    junk = (".git", ".venv", ".cache", "build", "dist", "runs", "var", "test-artifacts", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*junk, ".pytest_cache", ".ruff_cache"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps", "-w", str(out), str(src)]
    sh(cmd, log_to=RUN / "logs" / "wheel.log")
    shutil.rmtree(src)
    (whl,) = out.glob("vanity-*.whl")
    return whl


def compare(x86: Path, arm: Path) -> tuple[float, str]:
    """Pixel agreement of two label PNGs, and a note on what differs."""
    import cv2

    a = cv2.imread(str(x86), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(arm), cv2.IMREAD_UNCHANGED)
    if a is None or b is None:
        return 0.0, "label image missing"
    if a.shape != b.shape:
        return 0.0, f"shapes differ: {a.shape} vs {b.shape}"
    agree = float((a == b).mean())
    return agree, f"{int((a != b).sum())} px differ"


class Timings(dict):
    """name -> (wall seconds, CPU seconds of the child processes: the emulator's work, which
    is what a busy machine stretches)."""

    @contextlib.contextmanager
    def __call__(self, name: str):
        w0, c0 = time.monotonic(), _children_cpu()
        try:
            yield
        finally:
            self[name] = (time.monotonic() - w0, _children_cpu() - c0)


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def check(args: argparse.Namespace) -> int:
    t_start = time.monotonic()
    mode = probe()
    ensure_host_tools()
    suite, py = args.suite, SUITES[args.suite]
    tm = Timings()
    with locked():
        with tm("root"):
            root = build_root(suite, mode)
        with tm("wheels"):
            wheels = download_wheels(py)
        with tm("venv"):
            venv = build_venv(root, wheels, mode, suite)
        log(f"cache: {root.name}, {wheels.name}, {venv.name} ({CACHE})")

        run = RUN / suite
        shutil.rmtree(run, ignore_errors=True)
        (run / "x86").mkdir(parents=True)
        (run / "arm").mkdir(parents=True)
        with tm("images"):
            images = golden_images(run / "in", args.images)
        with tm("wheel"):
            whl = build_project_wheel(run / "dist")

        pi = Pi(root, mode, args.cpu).bind(venv, VENV).bind(run, "/mnt/run").bind(ROOT, "/mnt/src", ro=True)
        vanity = f"{VENV}/bin/vanity"
        with tm("arm install"):
            pi.run(
                [
                    *PI_PIP_INSTALL,
                    "--no-deps",
                    "--force-reinstall",
                    f"/mnt/run/dist/{whl.name}",
                ],
                log_to=run / "arm" / "install.log",
            )

        # x86: this venv, this tree, the configuration's defaults.
        with tm("x86 analyze"):
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            for name, img in images.items():
                out = run / "x86" / name
                cmd = [sys.executable, "-m", "edge.cli", "analyze", str(img), "--out", f"{out}.png", "--json"]
                with open(f"{out}.json", "w") as stdout, open(f"{out}.err", "w") as stderr:
                    r = subprocess.run(cmd, stdout=stdout, stderr=stderr, cwd=ROOT, env=env)
                if r.returncode != 0:
                    raise Failed(
                        f"x86: vanity analyze {img.name} exited {r.returncode}: {Path(f'{out}.err').read_text()}"
                    )

        with tm("arm analyze"):
            for name in images:
                pi.run(
                    [
                        "sh",
                        "-c",
                        f"cd /tmp && {vanity} analyze /mnt/run/in/{name}.png --out /mnt/run/arm/{name}.png "
                        f"--json > /mnt/run/arm/{name}.json 2>/mnt/run/arm/{name}.err",
                    ],
                    log_to=run / "arm" / f"{name}.log",
                )

        with tm("arm load"):
            pi.run(
                ["sh", "-c", f"cd /tmp && {VENV}/bin/python /mnt/src/deploy/aarch64/probe_litert.py"],
                log_to=run / "arm" / "probe.log",
            )
            pi.run(["sh", "-c", f"cd /tmp && {vanity} doctor"], log_to=run / "arm" / "doctor.txt")

        with tm("arm bench"):
            pi.run(
                ["sh", "-c", f"cd /tmp && {vanity} bench --frames 30 --warmup 5 --json > /mnt/run/arm/bench.json"],
                log_to=run / "arm" / "bench.log",
            )

        with tm("install-pi dry run"):
            r = pi.run(
                ["bash", "/mnt/src/deploy/install-pi.sh", "--dry-run", "--no-start"],
                log_to=run / "arm" / "install-pi-dry-run.log",
                check=False,
            )

    return report(run, images, r.returncode, tm, time.monotonic() - t_start, suite, py, args.cpu)


def report(run: Path, images, dry_rc: int, timings, total: float, suite: str, py: str, cpu: str) -> int:
    problems: list[str] = []
    checks: dict[str, bool] = {}

    def verdict(check_name: str, problem: str | None = None) -> None:
        checks[check_name] = checks.get(check_name, True) and problem is None
        if problem:
            problems.append(problem)

    rows = []
    for name in images:
        verdict(f"analyze {name}")
        try:
            jx = json.loads((run / "x86" / f"{name}.json").read_text())
            ja = json.loads((run / "arm" / f"{name}.json").read_text())
        except (OSError, ValueError) as e:
            verdict(f"analyze {name}", f"{name}: no JSON report ({e})")
            continue
        agree, note = compare(run / "x86" / f"{name}.png", run / "arm" / f"{name}.png")
        fx, fa = len(jx["faces"]), len(ja["faces"])
        tx = [f["skin_tone"]["monk"] if f["skin_tone"] else None for f in jx["faces"]]
        ta = [f["skin_tone"]["monk"] if f["skin_tone"] else None for f in ja["faces"]]
        rows.append(
            {
                "image": name,
                "faces_x86": fx,
                "faces_arm": fa,
                "agreement": agree,
                "monk_x86": tx,
                "monk_arm": ta,
                "note": note,
            }
        )
        if fx != fa:
            verdict(f"analyze {name}", f"{name}: {fx} face(s) on x86, {fa} on aarch64")
        if agree < AGREEMENT:
            verdict(f"analyze {name}", f"{name}: labels agree on {agree:.4%} of pixels (< {AGREEMENT:.1%}); {note}")
    if not rows:
        verdict("images", "no image was compared")

    lines = (run / "arm" / "probe.log").read_text().splitlines()
    probe_out = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    verdict("bundle on the aarch64 LiteRT")
    if probe_out["machine"] != "aarch64" or probe_out["elf_machine"] != "aarch64":
        verdict("bundle on the aarch64 LiteRT", f"the bundle did not run on the aarch64 LiteRT: {probe_out}")
    if not probe_out["model_in_venv"]:
        verdict("bundle on the aarch64 LiteRT", "the default bundle was not loaded from the installed wheel")
    bench = json.loads((run / "arm" / "bench.json").read_text())
    verdict("bench")
    if bench.get("runtime") != "litert" or not bench.get("fps", 0) > 0:
        verdict("bench", f"vanity bench: runtime {bench.get('runtime')!r}, {bench.get('fps')} FPS")

    dry = (run / "arm" / "install-pi-dry-run.log").read_text()
    verdict("install-pi.sh --dry-run")
    if dry_rc != 0:
        verdict("install-pi.sh --dry-run", f"install-pi.sh --dry-run exited {dry_rc}")
    if "no chromium package" in dry:
        verdict("install-pi.sh --dry-run", "install-pi.sh --dry-run: no chromium package, yet the apt sources have one")
    installs = [ln for ln in dry.splitlines() if "apt-get install" in ln]
    if not any(" chromium" in ln for ln in installs):
        verdict("install-pi.sh --dry-run", f"install-pi.sh --dry-run would not install chromium: {installs}")

    print()
    print(f"check-aarch64: Debian {suite} arm64, Python {py}, qemu-user as a {cpu} ({CPUS[cpu][0]})")
    print(
        f"  LiteRT {probe_out['litert']} ({probe_out['elf_machine']} {probe_out['library']}), "
        f"bundle {probe_out['model']} loaded, {probe_out['interpreter']}"
    )
    print(f"  {'image':<22}{'faces x86/arm':>14}{'agreement':>11}{'monk x86/arm':>16}")
    for r in rows:
        print(
            f"  {r['image']:<22}{r['faces_x86']:>7}/{r['faces_arm']:<6}{r['agreement']:>11.4%}"
            f"{str(r['monk_x86']) + '/' + str(r['monk_arm']):>16}"
        )
    st = bench["stages"]
    print(
        f"  vanity bench --frames 30 (emulated, not a Pi's speed): {bench['fps']:.1f} FPS, "
        f"analyze p50 {st['analyze']['p50_ms']:.0f} ms, runtime {bench['runtime']}"
    )
    would = "; ".join(s.strip() for s in installs) or "installs nothing"
    print(f"  install-pi.sh --dry-run: exit {dry_rc}; {would}")
    steps = ", ".join(f"{k} {w:.0f} s" for k, (w, _) in timings.items() if w >= 0.5)
    cpu_s = sum(c for _, c in timings.values())
    print(f"  time: {steps}; total {total:.0f} s (CPU {cpu_s:.0f} s)")
    summary = {
        "suite": suite,
        "python": py,
        "cpu": cpu,
        "images": rows,
        "probe": probe_out,
        "bench": {"fps": bench["fps"], "runtime": bench["runtime"], "stages": st},
        "install_pi_rc": dry_rc,
        "timings_s": {k: {"wall": round(w, 1), "cpu": round(c, 1)} for k, (w, c) in timings.items()},
        "total_s": round(total, 1),
        "checks": checks,
        "problems": problems,
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    for p in problems:
        print(f"  FAILED: {p}")
    print(f"  files: {run}")
    failed = sum(not ok for ok in checks.values())
    print(f"check-aarch64: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "_ns":  # internal: python check_aarch64.py _ns MODE -- ARGV...
        return ns_main(sys.argv[2], sys.argv[4:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", default="check", choices=["check", "probe", "shell", "build"])
    ap.add_argument(
        "--suite",
        choices=sorted(SUITES),
        default=os.environ.get("AARCH64_SUITE", "bookworm"),
        help="Debian release of the root (bookworm: Python 3.11, trixie: 3.13)",
    )
    ap.add_argument(
        "--images",
        choices=["golden", "all"],
        default=os.environ.get("AARCH64_IMAGES", "golden"),
        help="golden: the golden tests' photos; all: also their rolled, close and half-size views (slower)",
    )
    ap.add_argument(
        "--cpu",
        choices=sorted(CPUS),
        default=os.environ.get("AARCH64_CPU", "pi4"),
        help="the Pi whose CPU qemu shows (and whose /proc/cpuinfo LiteRT reads)",
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, rest = ap.parse_args(argv[:cut]), argv[cut + 1 :]
    try:
        if args.command == "probe":
            print(f"check-aarch64 can run here (binfmt: {probe()})")
            return 0
        if args.command == "check":
            return check(args)
        mode = probe()
        ensure_host_tools()
        with locked():
            root = build_root(args.suite, mode)
            venv = build_venv(root, download_wheels(SUITES[args.suite]), mode, args.suite)
        if args.command == "shell":
            pi = Pi(root, mode, args.cpu).bind(venv, VENV).bind(ROOT, "/mnt/src", ro=True)
            return subprocess.run(pi.argv(rest or ["bash"]), env=dict(os.environ, QEMU_CPU=pi.qemu_cpu)).returncode
        print(f"built: {root}\n       {venv}")
        return 0
    except Skip as e:
        print(f"check-aarch64 skipped: {e}")
        return 3
    except Failed as e:
        print(f"check-aarch64: FAILED: {e}")
        print("check-aarch64: 0 passed, 1 failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
