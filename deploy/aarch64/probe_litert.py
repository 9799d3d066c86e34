"""Run on the emulated Pi by deploy/check_aarch64.py: the configuration's default bundle,
loaded with LiteRT explicitly (not "auto"), parses one crop. Prints one JSON line."""

import json
import platform
import struct
from pathlib import Path

import numpy as np

from edge.config import load_config
from edge.runtime import open_parser

ELF_MACHINES = {183: "aarch64", 62: "x86_64", 40: "arm"}

cfg = load_config(None)
parser = open_parser(cfg.model.path, "litert", cfg.model.threads)
size = parser.metadata.input.size
out = parser(np.full((size, size, 3), 128, np.uint8))
assert np.isfinite(out.probs).all() and out.probs.shape[-1] == len(parser.metadata.classes)

import ai_edge_litert  # noqa: E402 - after the interpreter, to report what it loaded

libs = sorted(
    {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "ai_edge_litert/" in line}
)
lib = max((p for p in libs if p.endswith(".so")), key=lambda p: Path(p).stat().st_size)
with open(lib, "rb") as f:
    head = f.read(20)
elf = ELF_MACHINES.get(struct.unpack_from("<H", head, 18)[0], "unknown") if head[:4] == b"\x7fELF" else "not ELF"
print(
    json.dumps(
        {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "litert": getattr(ai_edge_litert, "__version__", "?"),
            "library": Path(lib).name,
            "elf_machine": elf,
            "model": Path(cfg.model.path).name,
            "model_in_venv": "/site-packages/" in str(Path(cfg.model.path).resolve()),
            "interpreter": f"{parser.runtime_name}, {parser.threads} threads, input {size}x{size}",
        }
    )
)
