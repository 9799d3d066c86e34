"""Installs the labelling teacher: MediaPipe's bundled face models, as plain files.

The teacher (``training/teacher.py``) runs two ``.tflite`` files that ship inside
the ``mediapipe`` wheel on PyPI through LiteRT, in the project's own environment.
MediaPipe itself is never installed or imported: ``mediapipe==0.10.21`` needs
``numpy<2`` and cannot share an environment with TensorFlow 2.21, and all the
teacher needs from it is two model files (Apache-2.0, like the wheel).

This is an explicit install step, like ``pip install``; nothing downloads
weights at run time. Run it as::

    python -m training.teacher_assets --dest .cache/teacher            # via pip download
    python -m training.teacher_assets --wheel mediapipe-0.10.21-....whl  # offline, from a wheel

It writes ``DEST/face_landmark.tflite``, ``DEST/face_detection_short_range.tflite``,
the wheel's ``LICENSE`` and ``DEST/manifest.json`` (provenance: version, wheel,
SHA-256 of every file, date). The files' hashes are pinned below; a wheel whose
models differ is refused.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edge.files import sha256_bytes, sha256_file

MEDIAPIPE_VERSION = "0.10.21"
"""The MediaPipe release whose bundled models the teacher uses."""

DEFAULT_TEACHER_DIR = Path(".cache/teacher")
"""Where ``install_teacher`` puts the files and ``vanity label`` looks for them (relative to the cwd)."""

LANDMARK_FILE = "face_landmark.tflite"
DETECTOR_FILE = "face_detection_short_range.tflite"
MANIFEST_FILE = "manifest.json"

# Path inside the wheel -> (file name in the teacher folder, pinned SHA-256).
# The models are the same bytes in every platform's wheel of this release.
TEACHER_FILES: dict[str, tuple[str, str]] = {
    "mediapipe/modules/face_landmark/face_landmark.tflite": (
        LANDMARK_FILE,
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
    "mediapipe/modules/face_detection/face_detection_short_range.tflite": (
        DETECTOR_FILE,
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
}
PINNED_SHA256 = dict(TEACHER_FILES.values())

# pip may pick any platform's wheel; pin one so the download is the same file everywhere
# (only data files are extracted, so the host's platform does not matter).
_WHEEL_PLATFORM = "manylinux_2_28_x86_64"
_WHEEL_PYTHON = "3.11"


class TeacherInstallError(RuntimeError):
    """The teacher's files could not be downloaded, found in the wheel, or verified."""


def teacher_files_ok(dest: Path) -> bool:
    """Whether ``dest`` holds every teacher file with its pinned hash."""
    for name, digest in PINNED_SHA256.items():
        p = Path(dest) / name
        if not p.is_file() or sha256_file(p) != digest:
            return False
    return True


def download_wheel(into: Path, python: str = sys.executable) -> Path:
    """``pip download`` the mediapipe wheel (no dependencies) into a folder; return its path."""
    cmd = [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        _WHEEL_PLATFORM,
        "--python-version",
        _WHEEL_PYTHON,
        "--implementation",
        "cp",
        f"mediapipe=={MEDIAPIPE_VERSION}",
        "-d",
        str(into),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(into).glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise TeacherInstallError(
            f"could not download mediapipe=={MEDIAPIPE_VERSION} from the package index "
            f"({' | '.join(tail) or 'no wheel'}). Command: {' '.join(cmd)}"
        )
    return wheels[0]


def install_teacher(
    dest: Path = DEFAULT_TEACHER_DIR,
    *,
    wheel: Path | None = None,
    python: str = sys.executable,
    force: bool = False,
) -> Path:
    """Put the teacher's model files in ``dest`` and return ``dest``.

    Args:
        dest: folder to write (created).
        wheel: a local ``mediapipe-0.10.21-*.whl`` to extract from; by default
            the wheel is fetched with ``pip download --no-deps`` into a temporary folder.
        python: interpreter whose pip downloads the wheel.
        force: reinstall even if ``dest`` already holds verified files.

    Raises:
        TeacherInstallError: download failed, a file is missing from the wheel,
            or a file's SHA-256 differs from the pinned one.
    """
    dest = Path(dest)
    if not force and teacher_files_ok(dest) and (dest / MANIFEST_FILE).is_file():
        return dest
    with tempfile.TemporaryDirectory(prefix="vanity-teacher-") as tmp:
        whl = Path(wheel) if wheel is not None else download_wheel(Path(tmp), python)
        if not whl.is_file():
            raise TeacherInstallError(f"{whl}: wheel not found")
        wheel_sha = sha256_bytes(whl.read_bytes())
        files: dict[str, bytes] = {}
        try:
            with zipfile.ZipFile(whl) as zf:
                names = set(zf.namelist())
                for inner, (name, digest) in TEACHER_FILES.items():
                    if inner not in names:
                        raise TeacherInstallError(f"{whl.name}: has no {inner} (is it mediapipe {MEDIAPIPE_VERSION}?)")
                    data = zf.read(inner)
                    if sha256_bytes(data) != digest:
                        raise TeacherInstallError(
                            f"{whl.name}: {inner} has SHA-256 {sha256_bytes(data)[:12]}…, expected {digest[:12]}… "
                            f"(not the mediapipe {MEDIAPIPE_VERSION} model, or tampered with)"
                        )
                    files[name] = data
                lic = [n for n in names if n.endswith(".dist-info/LICENSE")]
                if lic:
                    files["LICENSE"] = zf.read(lic[0])
        except zipfile.BadZipFile as e:
            raise TeacherInstallError(f"{whl}: not a wheel ({e})") from e
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp_path = dest / (name + ".tmp")
        tmp_path.write_bytes(data)
        tmp_path.replace(dest / name)
    manifest = {
        "source": f"mediapipe=={MEDIAPIPE_VERSION} (PyPI wheel)",
        "mediapipe_version": MEDIAPIPE_VERSION,
        "license": "Apache-2.0 (see LICENSE)",
        "wheel": whl.name,
        "wheel_sha256": wheel_sha,
        "files": {name: sha256_bytes(data) for name, data in files.items() if name != "LICENSE"},
        "installed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m training.teacher_assets [--dest DIR] [--wheel WHL] [--force]``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_TEACHER_DIR, help="teacher folder (default .cache/teacher)")
    ap.add_argument("--wheel", type=Path, default=None, help="local mediapipe wheel instead of pip download")
    ap.add_argument("--force", action="store_true", help="reinstall even if the files are already there")
    args = ap.parse_args(argv)
    try:
        out = install_teacher(args.dest, wheel=args.wheel, force=args.force)
    except TeacherInstallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"teacher installed in {out} (mediapipe {MEDIAPIPE_VERSION} face models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
