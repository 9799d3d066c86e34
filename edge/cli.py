"""The ``vanity`` command. The only place errors become exit codes and messages.

Importing this module must stay cheap and must never import TensorFlow: the
training and conversion commands import their packages inside the command.
Exit codes: 0 ok, 1 runtime failure, 2 bad input / configuration / missing extra.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, NoReturn

import typer

from edge.files import VIDEO_SUFFIXES, is_image_file

if TYPE_CHECKING:  # the CLI imports its heavy parts inside the commands, so `vanity --help` stays fast
    import numpy as np

    from edge.catalog import Catalog
    from edge.config import VanityConfig
    from edge.runtime.base import Parser
    from edge.tone_model import ToneModel
    from edge.types import FaceAnalysis, SkinTone

app = typer.Typer(
    name="vanity",
    help="Vanity: an on-device virtual-makeup mirror.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
model_app = typer.Typer(help="Inspect model bundles.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(model_app, name="model")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Configuration file (TOML), layered over the defaults.")
]
ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="Model bundle (.tflite with its .json).")]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="demo | fake | fake-empty | v4l2:/dev/video0 | picamera2 | an image, folder or video path.",
    ),
]


class CliError(Exception):
    """An error to print without a traceback, with an exit code."""

    def __init__(self, message: str, code: int = 1, details: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or []


def _fail(message: str, code: int = 1, details: list[str] | None = None) -> NoReturn:
    raise CliError(message, code, details)


def _require_tensorflow(what: str) -> None:
    # Look the package up without importing it: the job imports it when it needs it.
    import importlib.util

    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        _fail(
            f"`vanity {what}` needs TensorFlow, which this install does not have.\n"
            "Install the training extra on a workstation:  pip install 'vanity[train]'",
            code=2,
        )


def source_override(spec: str) -> dict[str, Any]:
    """Turn a --source string into a config ``source`` table."""
    if spec in ("demo", "fake"):
        return {"kind": spec}
    if spec == "fake-empty":
        return {"kind": "fake", "face": False}
    if spec == "picamera2":
        return {"kind": "picamera2"}
    if spec.startswith("v4l2:"):
        return {"kind": "v4l2", "device": spec[5:]}
    if spec.startswith("/dev/video"):
        return {"kind": "v4l2", "device": spec}
    p = Path(spec)
    if p.is_dir():
        return {"kind": "image", "path": str(p)}
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return {"kind": "video", "path": str(p)}
    if is_image_file(p):
        return {"kind": "image", "path": str(p)}
    _fail(f"--source {spec!r}: not a known source, and not an image, folder or video path", code=2)
    return {}


def _load_config(config: Path | None, **over: Any):
    from edge.config import ConfigError, load_config

    overrides: dict[str, Any] = {}
    if over.get("source"):
        overrides["source"] = source_override(over["source"])
    if over.get("model"):
        overrides["model"] = {"path": str(over["model"])}
    server = {k: over[k] for k in ("host", "port") if over.get(k) is not None}
    if server:
        overrides["server"] = server
    try:
        return load_config(config, overrides)
    except ConfigError as e:
        _fail(str(e), code=2, details=e.errors)


def _open_parser(cfg):
    from edge.contract import BundleError
    from edge.runtime import RuntimeUnavailable, open_parser

    try:
        return open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads)
    except BundleError as e:
        _fail(f"model bundle refused: {e}", code=2)
    except RuntimeUnavailable as e:
        _fail(str(e), code=2)


def _make_detector(cfg):
    from edge.detectors import make_detector
    from edge.runtime import RuntimeUnavailable

    try:
        return make_detector(cfg.detector)
    except RuntimeUnavailable as e:
        _fail(str(e), code=2)
    except RuntimeError as e:  # a shipped model missing or altered (DetectorModelError), a missing cascade
        _fail(f"face detector refused: {e}", code=2)


def _detector_line(info: dict) -> str:
    """One line naming the detector and, for a shipped model, its licence and provenance."""
    if "sha256" not in info:
        return str(info.get("kind"))
    return (
        f"{info['kind']} {info['model']} ({Path(info['file']).name}, {info['package']} {info['version']}, "
        f"{info['license']}, sha256 {str(info['sha256'])[:12]}…)"
    )


def _open_catalog(cfg):
    from edge.catalog import CatalogError, load_catalog

    try:
        return load_catalog(cfg.catalog)
    except CatalogError as e:
        _fail(f"catalogue refused: {e}", code=2, details=getattr(e, "errors", None))


def _open_tone_model(cfg: VanityConfig) -> ToneModel:
    """The configured tone model; exits 2 with the reason if it is refused."""
    from edge.tone_model import ToneModel, ToneModelError

    try:
        return ToneModel.load(cfg.analysis.tone_model)
    except ToneModelError as e:
        _fail(f"tone model refused (make tone-model rebuilds it): {e}", code=2)


def _doctor_tone_model(cfg: VanityConfig) -> bool:
    """`vanity doctor`'s tone-model line; False if the model is refused."""
    from edge.files import sha256_file
    from edge.tone_model import ToneModel, ToneModelError

    try:
        tm = ToneModel.load(cfg.analysis.tone_model)
    except ToneModelError as e:
        typer.echo(f"tone model   REFUSED: {e}")
        return False
    auc = tm.fitted.get("dev_auc_light_below_deep", "?")
    typer.echo(f"tone model   {cfg.analysis.tone_model} (+-{tm.uncertainty} steps; held-out light/deep AUC {auc})")
    try:
        same = tm.parser_sha256 == sha256_file(Path(cfg.model.path))
    except OSError:
        same = True  # the model line above already reports a missing bundle
    if not same:
        typer.echo("             fitted on another parse bundle's skin masks: run make tone-model")
    return True


def _read_image(path: Path):
    from edge.sources.base import SourceError
    from edge.sources.image import read_rgb

    try:
        return read_rgb(path)
    except SourceError as e:
        _fail(str(e), code=2)


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot take an image before any work is done (exit 2, one line)."""
    if not is_image_file(out):
        _fail(f"--out {out}: name an image file ending in .png or .jpg", code=2)
    if out.is_dir():
        _fail(f"--out {out}: is a folder; name an image file in it", code=2)
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                _fail(f"--out {out}: {parent} is a file, not a folder", code=2)
            break


def _write_image(out: Path, bgr: np.ndarray, what: str) -> None:
    """Write an image for ``--out`` (folders made as needed); exits 2 with one line when it cannot."""
    from edge.sources.image import write_image

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, bgr)
    except ValueError as e:
        _fail(str(e), code=2)
    except OSError as e:
        _fail(f"{out}: cannot write {what}: {e.strerror or e}", code=2)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )


# ---------------------------------------------------------------------- run


@app.command()
def run(
    config: ConfigOpt = None,
    source: SourceOpt = None,
    model: ModelOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8080).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the mirror daemon: camera -> analysis -> makeup -> kiosk page."""
    _setup_logging(verbose)
    cfg = _load_config(config, source=source, model=model, host=host, port=port)
    from edge.daemon import DaemonError, serve

    try:
        serve(cfg)
    except DaemonError as e:
        _fail(str(e), code=2, details=e.errors)
    # Stopped gracefully (SIGTERM or SIGINT): everything is closed. Leave now, as the signal's own
    # action would, without the interpreter's teardown of LiteRT, OpenCV and numpy (1-2 s here).
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ---------------------------------------------------------------------- still images


class StillFaces(NamedTuple):
    """The parser a still image was analysed with, and the faces found (best first)."""

    parser: Parser
    faces: list[FaceAnalysis]


def _still_faces(cfg: VanityConfig, frame: np.ndarray) -> StillFaces:
    """Every face in a still image through the device's still path (detector search, parse, refinement)."""
    from edge.analysis import analyze_still

    parser = _open_parser(cfg)
    return StillFaces(parser, analyze_still(parser, _make_detector(cfg), cfg.analysis, frame))


def _face_report(fa: FaceAnalysis, tone: SkinTone | None, catalog: Catalog, min_confidence: float) -> dict[str, Any]:
    """One face of ``vanity analyze --json``: box, score, tone (or None) and the shades recommended for it.

    Shades are recommended only for a tone at or above ``min_confidence``, as on the kiosk.
    """
    item: dict[str, Any] = {
        "box": {"cx": fa.box.cx, "cy": fa.box.cy, "size": fa.box.size, "angle_deg": fa.box.angle_deg},
        "face_score": fa.face_score,
        "skin_tone": None,
        "recommendations": [],
    }
    if tone is None:
        return item
    item["skin_tone"] = {
        "monk": tone.monk,
        "undertone": tone.undertone,
        "lab": list(tone.lab),
        "confidence": tone.confidence,
        "uncertainty_monk_steps": tone.uncertainty,
        "reference": tone.reference,
        "monk_score": tone.score,
        "reliable": tone.confidence >= min_confidence,
    }
    if tone.confidence < min_confidence:
        item["advice"] = "Skin tone not reliable in this photo (face the light, or a colour photo): no shade advice"
        return item
    item["recommendations"] = [
        {
            "sku": r.product.sku,
            "brand": r.product.brand,
            "product": r.product.product,
            "shade": r.product.shade,
            "hex": r.product.hex,
            "reason": r.reason,
        }
        for r in catalog.recommend(tone)
    ]
    return item


@app.command()
def analyze(
    image: Annotated[Path, typer.Argument(help="Image file (JPEG/PNG).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write a label PNG (class ids) here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print faces, boxes, tone and recommendations.")] = False,
    config: ConfigOpt = None,
    model: ModelOpt = None,
) -> None:
    """Label every face in a still image."""
    if out is not None:
        _check_out(out)
    cfg = _load_config(config, model=model)
    frame = _read_image(image)
    from edge.analysis import labels_to_image

    parser, faces = _still_faces(cfg, frame)
    h, w = frame.shape[:2]
    if out is not None:
        _write_image(out, labels_to_image(faces, h, w), "the label image")
    if as_json:
        from edge.tone import measure_tone

        catalog = _open_catalog(cfg)
        tone_model = _open_tone_model(cfg)
        min_conf = cfg.analysis.tone_min_confidence
        report = [_face_report(fa, measure_tone(frame, fa, None, tone_model), catalog, min_conf) for fa in faces]
        doc: dict[str, Any] = {"image": str(image), "width": w, "height": h, "faces": report}
        if not faces:
            doc["message"] = "no face found"
        doc["classes"] = parser.metadata.classes
        typer.echo(json.dumps(doc, indent=2))
    elif not faces:
        typer.echo(f"no face found in {image}" + (f"; wrote an unlabelled map to {out}" if out is not None else ""))
    elif out is None:
        typer.echo(f"{len(faces)} face(s) found in {image}")


@app.command()
def render(
    image: Annotated[Path, typer.Argument(help="Image file (JPEG/PNG).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output image (JPEG/PNG).")],
    look: Annotated[str, typer.Option("--look", "-l", help="Look name from the catalogue or built-ins.")] = "natural",
    config: ConfigOpt = None,
    model: ModelOpt = None,
) -> None:
    """Apply a look to every face of a still image."""
    import cv2

    _check_out(out)
    cfg = _load_config(config, model=model)
    frame = _read_image(image)
    catalog = _open_catalog(cfg)
    from edge.looks import available_looks
    from edge.makeup import Renderer

    looks = available_looks(catalog)
    if look not in looks:
        _fail(f"unknown look {look!r}; choose from: {', '.join(sorted(looks))}", code=2)
    chosen = looks[look]
    _, faces = _still_faces(cfg, frame)
    renderer = Renderer(feather_px=cfg.render.feather_px)
    result = frame
    for fa in faces:
        result = renderer.render(result, fa, chosen)
    _write_image(out, cv2.cvtColor(result, cv2.COLOR_RGB2BGR), "the image")
    if not faces:
        typer.echo(f"no face found in {image}; wrote it unchanged to {out}")
    else:
        typer.echo(f"{len(faces)} face(s), look {look!r} -> {out}")


# ---------------------------------------------------------------------- bench & doctor


@app.command()
def bench(
    source: SourceOpt = "demo",
    frames: Annotated[int, typer.Option(help="Frames to measure (after warm-up).", min=1)] = 300,
    warmup: Annotated[int, typer.Option(help="Frames to discard first.", min=0)] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOpt = None,
    model: ModelOpt = None,
) -> None:
    """Per-stage timings of the whole pipeline on a source, as fast as it goes."""
    cfg = _load_config(config, source=source, model=model)
    from edge.bench import run_bench

    try:
        result = run_bench(cfg, frames=frames, warmup=warmup)
    except Exception as e:
        _fail(f"benchmark failed: {e}", code=1)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{result['frames']} frames, {result['fps']:.1f} FPS end to end, RSS {result['rss_mb']:.0f} MB")
        typer.echo(
            f"runtime {result['runtime']} ({result['threads']} threads), model {result['model']}, "
            f"detector {result['detector']} (detect_forced: one full-frame pass)"
        )
        typer.echo(f"{'stage':<16}{'p50 ms':>10}{'p95 ms':>10}{'n':>8}")
        for name, s in result["stages"].items():
            typer.echo(f"{name:<16}{s['p50_ms']:>10.2f}{s['p95_ms']:>10.2f}{s['count']:>8}")


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check this device: runtime, threads, cameras, model bundle, temperature."""
    import os

    cfg = _load_config(config)
    ok = True
    from edge.runtime.base import RuntimeUnavailable, interpreter_class

    try:
        name, _ = interpreter_class(cfg.model.runtime)
        typer.echo(
            f"runtime      {name} (requested {cfg.model.runtime}), {cfg.model.threads} threads, {os.cpu_count()} CPUs"
        )
    except RuntimeUnavailable as e:
        ok = False
        typer.echo(f"runtime      MISSING: {e}")
    from edge.sources.v4l2 import list_cameras

    cams = list_cameras()
    typer.echo(f"cameras      {', '.join(cams) if cams else 'none found (/dev/video*)'}")
    try:
        import picamera2  # noqa: F401

        typer.echo("picamera2    available")
    except ImportError:
        typer.echo("picamera2    not installed")
    from edge.contract import BundleError, load_bundle

    try:
        b = load_bundle(cfg.model.path)
        typer.echo(f"model        {b.path} OK ({b.metadata.name}, sha256 {b.metadata.tflite_sha256[:12]}…)")
    except BundleError as e:
        ok = False
        typer.echo(f"model        REFUSED: {e}")
    from edge.detectors import describe_detector, make_detector

    try:
        info = describe_detector(cfg.detector)
        make_detector(cfg.detector)  # loads the model: checks its hash and that the interpreter runs it
        typer.echo(f"detector     {_detector_line(info)} OK")
        if "license_file" in info:
            typer.echo(f"             licence {info['license_file']}, from {info['path_in_wheel']} in the wheel")
    except (RuntimeError, OSError) as e:
        ok = False
        typer.echo(f"detector     REFUSED: {e}")
    from edge.calibration import CalibrationError, load_calibration

    try:
        cal = load_calibration(cfg.state_dir)
        typer.echo(
            f"calibration  {cal.describe()}"
            if cal
            else f"calibration  none in {cfg.state_dir} (skin tone works, with a wider uncertainty: vanity calibrate)"
        )
    except CalibrationError as e:
        ok = False
        typer.echo(f"calibration  REFUSED: {e}")
    ok = _doctor_tone_model(cfg) and ok
    from edge.pipeline import read_pi_health

    pi = read_pi_health()
    if "cpu_temp_c" in pi:
        typer.echo(f"cpu temp     {pi['cpu_temp_c']:.1f} °C")
    if "throttled" in pi:
        typer.echo(
            f"throttling   {pi['throttled']} (under-voltage {pi['under_voltage']}, "
            f"throttled now {pi['throttling_now']})"
        )
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- config & model


@config_app.command("check")
def config_check(config: Annotated[Path, typer.Argument(help="Configuration file (TOML).")]) -> None:
    """Validate a configuration file as `vanity run` would; exit 2 listing each error's location."""
    import os

    from edge.daemon import DaemonError, check_deployment

    cfg = _load_config(config)
    # The token credential is only visible to the service: without it, a missing token is a note.
    has_credentials = bool(os.environ.get("CREDENTIALS_DIRECTORY"))
    try:
        token = check_deployment(cfg, need_token=has_credentials)
    except DaemonError as e:
        _fail(f"{config}: {e}", code=2, details=e.errors)
    from edge.server import is_loopback

    if not is_loopback(cfg.server.host) and token is None:
        typer.echo(f"note: no server.token: on {cfg.server.host} `vanity run` needs the credential 'vanity-token'")
    typer.echo(f"{config}: OK")


@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    changed: Annotated[bool, typer.Option("--changed", help="Only settings that differ from the defaults.")] = False,
) -> None:
    """Print the effective configuration as JSON."""
    from edge.config import changed_fields

    cfg = _load_config(config)
    # Secrets (server.token) dump as "**********"; numbers are finite, so this is strict JSON.
    data = changed_fields(cfg) if changed else cfg.model_dump(mode="json")
    typer.echo(json.dumps(data, indent=2, allow_nan=False))


@model_app.command("info")
def model_info(
    bundle: Annotated[
        Path | None, typer.Argument(help="Model bundle (.tflite with its .json); default: the configured one.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Print a bundle's metadata after validating it, and the face detector's licence and provenance."""
    from edge.contract import BundleError, load_bundle
    from edge.detectors import describe_detector

    cfg = _load_config(config)
    try:
        b = load_bundle(bundle if bundle is not None else cfg.model.path)
    except BundleError as e:
        _fail(str(e), code=2)
    doc = b.metadata.model_dump(mode="json")
    try:
        doc["detector"] = describe_detector(cfg.detector)
    except RuntimeError as e:
        doc["detector"] = {"kind": cfg.detector.kind, "error": str(e)}
    typer.echo(json.dumps(doc, indent=2))


# ---------------------------------------------------------------------- workstation jobs


@app.command()
def train(
    data: Annotated[
        str, typer.Option(help="Data spec, e.g. synth:20000, lapa:PATH, celebamask:PATH, folder:PATH, joined by '+'.")
    ],
    out: Annotated[Path, typer.Option(help="Run directory, e.g. runs/NAME.")],
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs (early stopping may end sooner).")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Seed for data split, shuffling and weights.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    strategy: Annotated[str, typer.Option(help="default | mirrored | multiworker (tf.distribute).")] = "default",
    width: Annotated[float, typer.Option(help="Model width multiplier.")] = 1.0,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Limit steps per epoch.")] = None,
    strict_data: Annotated[bool, typer.Option(help="Fail on a malformed sample instead of skipping it.")] = False,
) -> None:
    """Train the face-parsing CNN (workstation; needs the `train` extra)."""
    _require_tensorflow("train")
    from training.train import options_from_cli
    from training.train import train as run_train

    try:
        opts = options_from_cli(
            data=data,
            out=out,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            resume=resume,
            strategy=strategy,
            width=width,
            steps_per_epoch=steps_per_epoch,
            lr=lr,
            strict_data=strict_data,
        )
        result = run_train(opts)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e), code=2)
    typer.echo(f"run {result.run_dir}: best model {result.best_model}")


@app.command()
def convert(
    run_dir: Annotated[Path, typer.Argument(help="Training run directory (from `vanity train`).")],
    out: Annotated[Path, typer.Option(help="Bundle path to write (.tflite; .json beside it).")],
    calibration: Annotated[int, typer.Option(min=1, help="Calibration samples (non-augmented).")] = 300,
    max_drop: Annotated[float, typer.Option(help="Largest mean-F1 drop the gate accepts.")] = 0.01,
    quantization: Annotated[str, typer.Option(help="int8 (default) | float16 | dynamic.")] = "int8",
    val_limit: Annotated[int | None, typer.Option(help="Limit validation samples for the gate.")] = None,
    per_channel: Annotated[bool, typer.Option(help="Per-channel weight scales (larger file).")] = False,
    prior_alpha: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Take this much of the loss's class weighting out of the softmax (0..1)."),
    ] = 0.0,
) -> None:
    """Quantize a trained run to a TFLite bundle and gate its accuracy."""
    _require_tensorflow("convert")
    from convert.quantize import ConversionError, GateFailed, convert_run

    try:
        report = convert_run(
            run_dir,
            out,
            calibration=calibration,
            max_drop=max_drop,
            quantization=quantization,
            val_limit=val_limit,
            per_channel=per_channel,
            prior_alpha=prior_alpha,
        )
    except GateFailed as e:
        _fail(f"accuracy gate failed: {e}", code=3)
    except (ConversionError, FileNotFoundError, ValueError) as e:
        _fail(str(e), code=2)
    typer.echo(f"bundle {out} ({report.summary})")


@app.command()
def label(
    photos: Annotated[Path, typer.Argument(help="Folder of face photos (consented).")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (images/ + masks/).")],
    teacher: Annotated[Path | None, typer.Option(help="Teacher model folder (default .cache/teacher).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Turn unlabelled face photos into training data with an offline landmark teacher."""
    if not photos.is_dir():
        _fail(f"{photos}: not a folder", code=2)
    from training.teacher import TeacherMissing, label_folder

    try:
        report = label_folder(photos, out, teacher=teacher, overwrite=overwrite)
    except TeacherMissing as e:
        _fail(str(e), code=2)
    for path, why in report.skipped:
        typer.echo(f"skipped {path}: {why}", err=True)
    typer.echo(f"{report.labelled} photo(s) labelled into {out} ({len(report.skipped)} skipped)")


@app.command()
def calibrate(
    card: Annotated[str, typer.Option(help="The card shown: grey18 (18 % grey), white (copier paper) or custom.")] = (
        "grey18"
    ),
    reflectance: Annotated[
        float | None, typer.Option(help="The card's reflectance (0.02..1), for a custom card.", min=0.02, max=1.0)
    ] = None,
    image: Annotated[Path | None, typer.Option(help="Measure this photo of the card instead of the camera.")] = None,
    frames: Annotated[int, typer.Option(help="Camera frames averaged (after 10 to settle).", min=1, max=300)] = 15,
    source: SourceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Measure a grey or white card held to fill the middle of the picture; store the colour correction."""
    import numpy as np

    from edge.calibration import CalibrationError, measure_card, save_calibration

    cfg = _load_config(config, source=source)
    if card == "custom" and reflectance is None:
        _fail("--card custom needs --reflectance", code=2)
    if image is not None:
        frame = _read_image(image)
    else:
        from edge.sources import SourceError, make_source

        src = make_source(cfg.source)
        try:
            src.open()
            shots = [src.read() for _ in range(10 + frames)][10:]
        except SourceError as e:
            _fail(f"camera: {e}", code=2)
        finally:
            src.close()
        frame = np.median(np.stack(shots), axis=0).astype(np.uint8)
    try:
        cal = measure_card(frame, card, reflectance)
        path = save_calibration(cal, cfg.state_dir)
    except (CalibrationError, ValueError) as e:
        _fail(str(e), code=2)
    except OSError as e:
        _fail(f"cannot write the calibration under {cfg.state_dir}: {e}", code=2)
    typer.echo(f"calibrated: {cal.describe()} -> {path}")


@app.command(name="eval")
def eval_(
    bundle: Annotated[Path, typer.Argument(help="Model bundle (.tflite with its .json).")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Labelled photos, e.g. 'celebamask:DIR@holdout+lfw:DIR@holdout' "
            "(kinds: celebamask, lfw, celebahair, teacher; @train/@holdout pick the fixed split).",
        ),
    ],
    limit: Annotated[int | None, typer.Option(help="At most this many photos per source.", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOpt = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Play each photo as a moving and a still camera sequence through the live pipeline."
        ),
    ] = False,
    frames: Annotated[int | None, typer.Option(help="--live: frames per sequence (default 12).", min=5)] = None,
    seed: Annotated[int | None, typer.Option(help="--live: seed of the motion and noise (default 0).", min=0)] = None,
) -> None:
    """Score a bundle on labelled photos through the device's still-image path (F1 per part, mIoU), or its live path."""
    cfg = _load_config(config, model=bundle)
    if not live and (frames is not None or seed is not None):
        _fail("--frames and --seed go with --live", code=2)
    parser = _open_parser(cfg)
    from edge.detectors import make_detector

    try:
        from training.evaluation import evaluate, table
        from training.live_eval import FRAMES, evaluate_live, kiosk_pipelines, run_sequence
        from training.live_eval import table as live_table
    except ImportError as e:
        _fail(f"vanity eval needs the workstation install (pip install '.[train]'): {e}", code=2)
    if live:
        from edge.daemon import DaemonError

        try:
            play = functools.partial(run_sequence, kiosk_pipelines(cfg))
            live_scores = evaluate_live(play, data, frames or FRAMES, seed or 0, limit=limit, progress=not as_json)
        except DaemonError as e:
            _fail(str(e), code=2, details=e.errors)
        except (FileNotFoundError, ValueError) as e:
            _fail(str(e), code=2)
        if as_json:
            out = {"bundle": str(bundle), "live": {"frames": frames or FRAMES, "seed": seed or 0}}
            typer.echo(json.dumps(out | {"scores": [s.to_dict() for s in live_scores]}, indent=2))
        else:
            for line in live_table(live_scores):
                typer.echo(line)
        return
    try:
        scores = evaluate(parser, make_detector(cfg.detector), cfg.analysis, data, limit=limit, progress=not as_json)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e), code=2)
    if as_json:
        typer.echo(json.dumps({"bundle": str(bundle), "scores": [s.to_dict() for s in scores]}, indent=2))
        return
    for line in table(scores):
        typer.echo(line)
    for s in scores:
        typer.echo(
            f"{s.source}: {s.photos} photos, {s.faces_found} faces found, {s.no_face} without a face, "
            f"{len(s.skipped)} skipped, {s.seconds:.0f} s"
        )
        for path, why in s.skipped[:5]:
            typer.echo(f"  skipped {path}: {why}", err=True)


def _usage_hint(e) -> str:
    ctx = getattr(e, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


def main() -> None:
    """Entry point: run the app, turning library and usage errors into one-line messages and exit codes."""
    from typer._click.exceptions import NoArgsIsHelpError
    from typer.exceptions import TyperException

    try:
        app(standalone_mode=False)
    except CliError as e:
        typer.echo(f"error: {e}", err=True)
        for d in e.details:
            typer.echo(f"  {d}", err=True)
        sys.exit(e.code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except NoArgsIsHelpError as e:
        e.show()  # the help text, asked for by giving no arguments
        sys.exit(2)
    except TyperException as e:
        # Usage errors (unknown option, bad value, missing argument): typer's own exception classes.
        typer.echo(f"error: {e.format_message()}{_usage_hint(e)}", err=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
