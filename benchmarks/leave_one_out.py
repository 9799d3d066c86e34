"""How the default recipe does on a real face it never saw: train without one allowed photo, test on it.

Usage (after `make teacher`; needs the `train` extra)::

    .venv/bin/python benchmarks/leave_one_out.py --hold-out grace_hopper [--synth 6000 --epochs 5]

Only two real faces may be used by this project, and the default bundle trains on both, so
`benchmarks/eval_real_faces.py` is a sanity check. This script is the generalisation check:
it builds a bundle with the default recipe (smaller by default, so it runs in about a
quarter of an hour on 2 cores) from the synthetic faces plus the *other* photo's
teacher-labelled variants, then scores ``vanity analyze`` with that bundle on the held-out
photo against the teacher, with and without the mouth pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hold-out", default="grace_hopper", choices=("astronaut", "grace_hopper"), help="Test photo.")
    ap.add_argument("--synth", type=int, default=6000, help="Synthetic training samples.")
    ap.add_argument("--epochs", type=int, default=5, help="Epochs.")
    ap.add_argument("--work", type=Path, default=None, help="Keep the run and bundle here (default: a temp dir).")
    args = ap.parse_args()

    from benchmarks.eval_real_faces import GROUPS, evaluate
    from convert.default_model import Recipe
    from convert.quantize import convert_run
    from training import real
    from training.model import ModelSpec
    from training.train import TrainOptions, train

    recipe = Recipe()
    work = args.work or Path(tempfile.mkdtemp(prefix="vanity-loo-"))
    photos = real.allowed_photos()
    kept = {k: v for k, v in photos.items() if k != args.hold_out}
    real_dir = work / "real"
    if not (real_dir / "masks").is_dir():
        original = real.allowed_photos
        real.allowed_photos = lambda: kept  # the writer labels only the photo we may train on
        try:
            real.write_allowed_set(real_dir, reshapes=recipe.real_reshapes, seed=recipe.seed)
        finally:
            real.allowed_photos = original
    # Twice the default repeat: one photo instead of two keeps the real share of an epoch.
    data = f"synth:{args.synth}+folder:{real_dir}*{2 * recipe.real_repeat}"
    result = train(
        TrainOptions(
            data=data,
            out=work / "run",
            epochs=args.epochs,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            seed=recipe.seed,
            model=ModelSpec(width=recipe.width),
            progress=False,
            patience=args.epochs,
        )
    )
    bundle = work / "bundle" / "loo.tflite"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    convert_run(
        result.run_dir, bundle, calibration=200, val_limit=400, quantization="int8", prior_alpha=recipe.prior_alpha
    )
    rows = {}
    for refine in (True, False):
        res = evaluate(bundle, refine=refine)
        rows["with mouth pass" if refine else "without"] = res[args.hold_out]
    print(f"held-out photo: {args.hold_out}; trained on {data}, {args.epochs} epochs; bundle {bundle}")
    print(f"{'':<18}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in rows.items():
        print(f"{name:<18}" + "".join(f"{row[g]:>8.3f}" for g in GROUPS))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
