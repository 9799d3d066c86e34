"""Build the default model bundle end to end: generate -> train -> convert (``make model``).

    python -m training.default_model --out edge/data/models/vanity-default.tflite

The recipe is the project's own code only: synthetic faces from ``training.synth``
plus the teacher-labelled allowed photos (``training.real``; ``--real-repeat 0`` leaves
them out), the training job, then the
int8 conversion with its accuracy gate. The bundle is written only if the gate passes.
Defaults fit in under an hour on a 2-core machine; ``--synth``/``--epochs`` scale it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "edge" / "data" / "models" / "vanity-default.tflite"


@dataclass
class Recipe:
    """How the default bundle is made."""

    synth: int = 14000
    epochs: int = 10
    batch_size: int = 32
    lr: float = 4e-3
    width: float = 1.0
    seed: int = 0
    calibration: int = 300
    val_limit: int | None = 800
    steps_per_epoch: int | None = None
    real_repeat: int = 10
    """Times each teacher-labelled real image is seen per epoch (0: synthetic faces only)."""
    real_reshapes: int = 4
    """Reshaped copies (new face shape, mouth, lips, sometimes lipstick) of each allowed photo's tone variant."""
    prior_alpha: float = 0.25
    """How much of the loss's class weighting the conversion takes back out of the softmax (see ``vanity convert``)."""


def build(out: Path, run_dir: Path, recipe: Recipe, progress: bool = True):
    """Train and convert; returns the conversion report.

    Raises:
        convert.quantize.GateFailed: the int8 bundle lost accuracy (no bundle written).
    """
    from convert.quantize import convert_run
    from training.model import ModelSpec
    from training.train import TrainOptions, train

    t0 = time.monotonic()
    data = f"synth:{recipe.synth}"
    if recipe.real_repeat:
        from training.real import write_allowed_set

        real_dir = run_dir.parent / f"{run_dir.name}-real-r{recipe.real_reshapes}"
        if not (real_dir / "masks").is_dir():
            write_allowed_set(real_dir, reshapes=recipe.real_reshapes, seed=recipe.seed)
        data += f"+folder:{real_dir}*{recipe.real_repeat}"
    opts = TrainOptions(
        data=data,
        out=run_dir,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        lr=recipe.lr,
        seed=recipe.seed,
        model=ModelSpec(width=recipe.width),
        steps_per_epoch=recipe.steps_per_epoch,
        progress=progress,
        patience=max(3, recipe.epochs // 3),
        resume=(run_dir / "run.json").is_file(),
    )
    result = train(opts)
    t1 = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    report = convert_run(
        result.run_dir,
        out,
        calibration=recipe.calibration,
        val_limit=recipe.val_limit,
        quantization="int8",
        prior_alpha=recipe.prior_alpha,
    )
    t2 = time.monotonic()
    print(f"trained in {(t1 - t0) / 60:.1f} min, converted in {(t2 - t1) / 60:.1f} min: {report.summary}")
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI for ``make model``."""
    r = Recipe()
    ap = argparse.ArgumentParser(description="Build the default model bundle (generate -> train -> convert).")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Bundle path (.tflite; .json beside it).")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "default", help="Training run directory.")
    ap.add_argument("--synth", type=int, default=r.synth, help="Synthetic training faces.")
    ap.add_argument("--epochs", type=int, default=r.epochs, help="Most epochs.")
    ap.add_argument("--width", type=float, default=r.width, help="Model width multiplier.")
    ap.add_argument("--batch-size", type=int, default=r.batch_size, help="Batch size.")
    ap.add_argument("--steps-per-epoch", type=int, default=None, help="Limit steps per epoch.")
    ap.add_argument("--calibration", type=int, default=r.calibration, help="Calibration samples.")
    ap.add_argument("--val-limit", type=int, default=r.val_limit, help="Validation samples for the gate.")
    ap.add_argument("--seed", type=int, default=r.seed, help="Seed.")
    ap.add_argument(
        "--real-repeat",
        type=int,
        default=r.real_repeat,
        help="Repeats of the teacher-labelled allowed photos per epoch (0: synthetic only; needs `make teacher`).",
    )
    ap.add_argument(
        "--real-reshapes", type=int, default=r.real_reshapes, help="Reshaped copies of each real tone variant."
    )
    ap.add_argument(
        "--prior-alpha",
        type=float,
        default=r.prior_alpha,
        help="Class-prior correction folded in at conversion (0..1).",
    )
    ap.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = ap.parse_args(argv)
    recipe = Recipe(
        synth=args.synth,
        epochs=args.epochs,
        batch_size=args.batch_size,
        width=args.width,
        seed=args.seed,
        calibration=args.calibration,
        val_limit=args.val_limit,
        steps_per_epoch=args.steps_per_epoch,
        real_repeat=args.real_repeat,
        real_reshapes=args.real_reshapes,
        prior_alpha=args.prior_alpha,
    )
    from convert.quantize import GateFailed

    try:
        build(args.out, args.run_dir, recipe, progress=not args.quiet)
    except GateFailed as e:
        print(f"error: accuracy gate failed: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
