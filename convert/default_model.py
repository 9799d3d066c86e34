"""Build the default model bundle end to end: read real faces -> train -> convert (``make model``).

    python -m convert.default_model --out edge/data/models/vanity-default.tflite \
        [--data-root ../shared/data]

The recipe trains on the real, human-labelled faces of ``--data-root`` (the layouts
of ``../shared/data`` as published, see ``training.real_sources``), completed by the
landmark teacher where a source labels only some classes, plus synthetic faces from
``training.synth`` for the skin tones, lighting and poses the photos lack. Every
source is read with its ``@train`` split, so the held-out people (``@holdout``) stay
unseen for ``vanity eval``. Then the int8 conversion with its accuracy gate; the
bundle is written only if the gate passes. About 75 minutes on a 2-core machine.

It lives in ``convert`` because it sits at the top of the chain: it imports
``training`` (to train) and ``convert`` (to quantize), and nothing imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "edge" / "data" / "models" / "vanity-default.tflite"


DEFAULT_DATA_ROOT = ROOT.parent / "shared" / "data"
"""Where ``make model`` looks for the real faces unless told otherwise."""

REAL_SOURCES: tuple[tuple[str, str], ...] = (
    ("celebamask", "celebamask-hq-sample"),
    ("lfw", "lfw"),
    ("celebahair", "celeba-hair"),
)
"""(reader, folder under the data root) of the human-labelled sources, each read with ``@train``."""

TEACHER_SOURCES: tuple[str, ...] = ("helen-subset/img",)
"""Folders of unlabelled photos under the data root, labelled by the teacher alone."""


class MissingData(FileNotFoundError):
    """The real faces the recipe trains on are not where it was told to look."""


@dataclass
class Recipe:
    """How the default bundle is made."""

    synth: int = 4000
    epochs: int = 12
    batch_size: int = 32
    lr: float = 4e-3
    width: float = 1.0
    seed: int = 0
    calibration: int = 300
    val_limit: int | None = 800
    steps_per_epoch: int | None = None
    celebamask_repeat: int = 4
    """Times each CelebAMask-HQ face (the only full human part labels) is seen per epoch."""
    prior_alpha: float = 0.25
    """How much of the loss's class weighting the conversion takes back out of the softmax (see ``vanity convert``)."""

    def data_spec(self, root: Path) -> str:
        """The training data spec for a data root (raises MissingData naming what is absent)."""
        missing = [f for _, f in REAL_SOURCES if not (root / f).is_dir()]
        missing += [f for f in TEACHER_SOURCES if not (root / f).is_dir()]
        if missing:
            raise MissingData(
                f"real training faces not found under {root}: missing {', '.join(missing)}. "
                "Pass the folder that holds them (make model DATA=/path/to/data, or --data-root); "
                "its README lists the layouts."
            )
        parts = [f"synth:{self.synth}"] if self.synth else []
        for kind, folder in REAL_SOURCES:
            rep = f"*{self.celebamask_repeat}" if kind == "celebamask" and self.celebamask_repeat > 1 else ""
            parts.append(f"{kind}:{root / folder}@train{rep}")
        parts += [f"teacher:{root / f}" for f in TEACHER_SOURCES]
        return "+".join(parts)


def build(out: Path, run_dir: Path, recipe: Recipe, data_root: Path = DEFAULT_DATA_ROOT, progress: bool = True):
    """Train and convert; returns the conversion report.

    Raises:
        MissingData: the real faces are not under ``data_root``.
        convert.errors.GateFailed: the int8 bundle lost accuracy (no bundle written).
    """
    data = recipe.data_spec(data_root.resolve())  # before TensorFlow loads: a missing folder fails at once
    from convert.quantize import convert_run
    from training.model import ModelSpec
    from training.run import RECORD_FILE
    from training.train import TrainOptions, train

    t0 = time.monotonic()
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
        resume=(run_dir / RECORD_FILE).is_file(),
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
    ap.add_argument("--synth", type=int, default=r.synth, help="Synthetic faces (tones, light, poses the photos lack).")
    ap.add_argument("--epochs", type=int, default=r.epochs, help="Most epochs.")
    ap.add_argument("--width", type=float, default=r.width, help="Model width multiplier.")
    ap.add_argument("--batch-size", type=int, default=r.batch_size, help="Batch size.")
    ap.add_argument("--steps-per-epoch", type=int, default=None, help="Limit steps per epoch.")
    ap.add_argument("--calibration", type=int, default=r.calibration, help="Calibration samples.")
    ap.add_argument("--val-limit", type=int, default=r.val_limit, help="Validation samples for the gate.")
    ap.add_argument("--seed", type=int, default=r.seed, help="Seed.")
    ap.add_argument(
        "--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="Folder holding the real faces (shared/data layout)."
    )
    ap.add_argument(
        "--celebamask-repeat", type=int, default=r.celebamask_repeat, help="Repeats of each CelebAMask-HQ face."
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
        celebamask_repeat=args.celebamask_repeat,
        prior_alpha=args.prior_alpha,
    )
    from convert.errors import GateFailed

    try:
        build(args.out, args.run_dir, recipe, args.data_root, progress=not args.quiet)
    except MissingData as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except GateFailed as e:
        print(f"error: accuracy gate failed: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
