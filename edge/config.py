"""The one configuration root.

Loaded once at the CLI edge from a TOML file layered over the built-in
defaults, validated into typed objects (unknown keys rejected, each error with
its location) and passed down. No module reads configuration on its own.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from edge.files import utf8_name

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
DEFAULT_MODEL = PACKAGE_DATA / "models" / "vanity-default.tflite"
DEFAULT_CATALOG = PACKAGE_DATA / "catalog.toml"
DEFAULT_TONE_MODEL = PACKAGE_DATA / "models" / "tone-model.json"


class _Strict(BaseModel):
    # allow_inf_nan=False: TOML reads `inf` and `nan` as floats; no setting of the kiosk means either.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


# ---------------------------------------------------------------------- sources


class DemoSourceConfig(_Strict):
    """Built-in demo: an allowed real photo moved like a person in front of a mirror."""

    kind: Literal["demo"] = Field("demo", description="Source type tag.")
    width: int = Field(640, ge=64, le=3840, description="Frame width in pixels.")
    height: int = Field(480, ge=64, le=2160, description="Frame height in pixels.")
    fps: float = Field(30.0, gt=0, le=240, description="Frames per second to produce.")
    absent_every_s: float = Field(
        0.0, ge=0, description="If > 0, the face leaves the frame for a while every this many seconds."
    )


class ImageSourceConfig(_Strict):
    """A still image, or a folder of images played as a loop."""

    kind: Literal["image"] = Field("image", description="Source type tag.")
    path: Path = Field(description="Image file or folder of images.")
    fps: float = Field(15.0, gt=0, le=240, description="Frames per second to produce.")
    hold_s: float = Field(2.0, gt=0, description="Seconds each image of a folder is shown.")


class VideoSourceConfig(_Strict):
    """A video file, looped."""

    kind: Literal["video"] = Field("video", description="Source type tag.")
    path: Path = Field(description="Video file readable by OpenCV.")
    loop: bool = Field(True, description="Start again at the end.")
    realtime: bool = Field(True, description="Pace frames at the file's frame rate.")

    @field_validator("path")
    @classmethod
    def _path(cls, v: Path) -> Path:
        utf8_name(v, "video file")
        return v


class V4L2SourceConfig(_Strict):
    """A USB/V4L2 camera through OpenCV."""

    kind: Literal["v4l2"] = Field("v4l2", description="Source type tag.")
    device: str = Field("/dev/video0", description="Device path or index.")
    width: int = Field(640, ge=64, le=3840, description="Requested frame width.")
    height: int = Field(480, ge=64, le=2160, description="Requested frame height.")
    fps: float = Field(30.0, gt=0, le=240, description="Requested frame rate.")
    pixel_format: Literal["YUYV", "MJPG", "auto"] = Field(
        "YUYV",
        description="Pixel format asked of the camera. YUYV: raw frames, no JPEG to decode on the Pi (USB 2.0 "
        "carries 640x480 at 30 FPS); MJPG: for cameras that need it at larger sizes; auto: the driver's choice.",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        utf8_name(v, "camera device")
        return v


class PiCameraSourceConfig(_Strict):
    """A Raspberry Pi camera through picamera2 (the `pi` extra)."""

    kind: Literal["picamera2"] = Field("picamera2", description="Source type tag.")
    width: int = Field(640, ge=64, le=4608, description="Frame width of the stream used.")
    height: int = Field(480, ge=64, le=3456, description="Frame height of the stream used.")
    fps: float = Field(30.0, gt=0, le=120, description="Frame rate.")
    use_lores: bool = Field(True, description="Read the ISP's low-resolution stream instead of scaling here.")


class FakeSourceConfig(_Strict):
    """Synthetic frames for tests: a drawn face or an empty scene."""

    kind: Literal["fake"] = Field("fake", description="Source type tag.")
    width: int = Field(640, ge=64, le=3840, description="Frame width in pixels.")
    height: int = Field(480, ge=64, le=2160, description="Frame height in pixels.")
    fps: float = Field(30.0, gt=0, le=1000, description="Frames per second to produce.")
    face: bool = Field(True, description="Draw a face; False gives an empty scene.")
    fail_after: int = Field(0, ge=0, description="If > 0, raise a read error after this many frames (tests).")
    fail_for: int = Field(0, ge=0, description="Number of failing reads before recovering (0 = forever).")


SourceConfig = Annotated[
    Union[
        DemoSourceConfig, ImageSourceConfig, VideoSourceConfig, V4L2SourceConfig, PiCameraSourceConfig, FakeSourceConfig
    ],
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------------- analysis


class ModelConfig(_Strict):
    """The model bundle and the runtime that executes it."""

    path: Path = Field(DEFAULT_MODEL, description="The .tflite of the bundle (its .json sidecar beside it).")
    runtime: Literal["auto", "litert", "tflite_runtime", "tensorflow"] = Field(
        "auto", description="Interpreter: auto tries LiteRT, then tflite_runtime, then tensorflow.lite."
    )
    threads: int = Field(2, ge=1, le=16, description="Interpreter threads.")
    watch: bool = Field(True, description="Reload the bundle when its file is replaced (hot-swap).")


class BlazeFaceDetectorConfig(_Strict):
    """MediaPipe's BlazeFace (Apache-2.0), shipped in the package and run through LiteRT: the default."""

    kind: Literal["blazeface"] = Field("blazeface", description="Detector type tag.")
    model: Literal["full_range"] = Field(
        "full_range", description="The shipped BlazeFace model: full range, 192x192 input (faces up to ~5 m away)."
    )
    score_threshold: float = Field(
        0.6, gt=0, lt=1, description="Least score (the model's face probability) for a face to count."
    )
    candidate_threshold: float = Field(
        0.5, gt=0, lt=1, description="Least first-pass score for a hit to be looked at again (see confirm_below)."
    )
    confirm_below: float = Field(
        0.8,
        gt=0,
        le=1,
        description="A hit scoring less than this is kept only if a second look, on squares confirm_scales times "
        "its size centred on it, scores at least score_threshold.",
    )
    confirm_scales: tuple[Annotated[float, Field(ge=1.5, le=8.0)], ...] = Field(
        (2.75, 3.25, 4.4), min_length=1, max_length=4, description="Sides of the second look's squares / face box side."
    )
    nms_iou: float = Field(0.3, gt=0, le=1, description="Overlap (IoU) above which two hits are one face.")
    min_face_px: int = Field(
        60, ge=8, le=2000, description="Smallest face (face box side, pixels) a still-image search must find."
    )
    min_input_face: float = Field(
        36.0,
        ge=4,
        le=128,
        description="Smallest face, in model input pixels, found reliably; a still is also searched in tiles so "
        "that a min_face_px face is at least this big.",
    )
    min_size_frac: float = Field(
        0.75, ge=0, le=1, description="Faces smaller than this fraction of min_face_px are dropped."
    )
    max_faces: int = Field(20, ge=1, le=100, description="Most faces reported per image.")
    box_scale: float = Field(
        1.28,
        gt=0.3,
        le=4.0,
        description="Face box side / (eye distance + eyes-to-mouth distance); fitted to the teacher's face oval.",
    )
    box_shift: float = Field(
        0.17,
        ge=-1.0,
        le=1.0,
        description="Face box centre below the eyes' midpoint, in face box sides; fitted to the teacher's face oval.",
    )
    runtime: Literal["auto", "litert", "tflite_runtime", "tensorflow"] = Field(
        "auto", description="Interpreter: auto tries LiteRT, then tflite_runtime, then tensorflow.lite."
    )
    threads: int = Field(2, ge=1, le=16, description="Interpreter threads for the detector.")


class HaarDetectorConfig(_Strict):
    """OpenCV's Haar cascade (ships with opencv-python-headless 4.x): an explicit fallback, no scores or roll."""

    kind: Literal["haar"] = Field("haar", description="Detector type tag.")
    scale_factor: float = Field(1.15, gt=1.0, le=2.0, description="Cascade pyramid step.")
    min_neighbors: int = Field(5, ge=1, le=20, description="Cascade acceptance threshold.")
    min_face_frac: float = Field(0.12, gt=0, le=1, description="Smallest face, as a fraction of the frame height.")
    max_width: int = Field(320, ge=80, le=1920, description="Frames are downscaled to this width before detection.")
    box_scale: float = Field(1.0, gt=0.3, le=3.0, description="Haar box side to face box side.")
    box_shift: float = Field(0.08, ge=-0.5, le=0.5, description="Shift of the Haar box centre downwards, in box sides.")


class FakeDetectorConfig(_Strict):
    """A detector returning a fixed box (tests)."""

    kind: Literal["fake"] = Field("fake", description="Detector type tag.")
    box: tuple[float, float, float, float] | None = Field(
        None, description="x, y, w, h in frame pixels; None finds nothing."
    )


DetectorConfig = Annotated[
    Union[BlazeFaceDetectorConfig, HaarDetectorConfig, FakeDetectorConfig], Field(discriminator="kind")
]


class AnalysisConfig(_Strict):
    """Tracking, smoothing and feature measurement."""

    face_threshold: float = Field(0.5, ge=0, le=1, description="Face-present score below which the track is lost.")
    min_face_pixels: int = Field(60, ge=1, description="Fewest face-class pixels in the class map to keep tracking.")
    redetect_every: int = Field(0, ge=0, description="If > 0, also run the detector every N frames while tracking.")
    idle_detect_every: int = Field(
        3, ge=1, le=30, description="With no face in view, run the detector on every Nth frame only (saves CPU)."
    )
    smooth_min_cutoff: float = Field(1.0, gt=0, description="One-Euro filter minimum cutoff (Hz) for the crop.")
    smooth_beta: float = Field(0.05, ge=0, description="One-Euro filter speed coefficient for the crop.")
    mask_ema: float = Field(0.5, gt=0, le=1, description="Weight of the newest class probabilities in crop space.")
    parse_every: int = Field(
        2,
        ge=1,
        le=4,
        description="Live: parse the face on every Nth frame (at 30 FPS, 2 parses 15 times a second); on the frames "
        "between, the last parse is moved with the face's measured motion. 1 parses every frame.",
    )
    settle_parses: int = Field(
        4,
        ge=0,
        le=30,
        description="Live: after a face is acquired, parse every frame this many times before carrying parses "
        "between frames (each parse re-centres the crop; a carried parse of an unsettled crop shows its errors).",
    )
    mouth_every: int = Field(
        1,
        ge=1,
        le=4,
        description="Live: run the mouth pass on every Nth parse; between, its last view moves with the face "
        "(2 saves a third of the inferences but costs moving lips about 0.03 F1: docs/pi-cost.md).",
    )
    tone_every: int = Field(
        30, ge=1, le=300, description="Live: measure the skin tone on every Nth frame (it changes slowly)."
    )
    refine_mouth: bool = Field(
        True,
        description="Parse a zoomed mouth crop as well, when the bundle supports it: sharper lips, one more inference.",
    )
    still_tta: bool = Field(
        True,
        description="Still images (vanity analyze/render): average each parse with its mirror image and the mouth "
        "pass over five crop sizes (16 inferences per face instead of 4).",
    )
    tone_ema: float = Field(0.1, gt=0, le=1, description="Weight of the newest skin-tone measurement.")
    tone_model: Path = Field(
        DEFAULT_TONE_MODEL,
        description="Learned tone model (JSON, made by `make tone-model`): the Monk step of an uncalibrated "
        "camera or photo. A calibrated kiosk matches the skin's reflectance to the swatches instead.",
    )
    tone_min_confidence: float = Field(
        0.45,
        ge=0,
        le=1,
        description="Recommend shades by skin tone only above this confidence; below it the kiosk asks the "
        "customer to face the light and recommends by the chosen look.",
    )


class RenderConfig(_Strict):
    """The mirror image."""

    # The file's key is ``mirror``; in code it is ``flip``, so "mirror" names only the product.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, serialize_by_alias=True)

    look: str = Field("natural", description="Look applied when a session starts.")
    flip: bool = Field(True, alias="mirror", description="Flip the image horizontally like a mirror.")
    feather_px: float = Field(2.0, ge=0, le=20, description="Mask feathering in crop pixels.")
    pipelined: bool = Field(
        True,
        description="Run analysis, render and JPEG encode on three threads, so a frame's stages use separate "
        "cores (each hand-over keeps the freshest frame, drops counted); off: one thread runs a frame's "
        "stages in turn.",
    )


def check_token(token: str) -> str:
    """An API token as the daemon accepts it: at least 16 characters, none of them blank or a control character.

    Raises:
        ValueError: saying what is wrong (never echoing the token).
    """
    if len(token) < 16:
        raise ValueError("the API token must be at least 16 characters")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError("the API token must not contain spaces or control characters")
    return token


def check_bind_host(host: str) -> str:
    """A bind address: an IP address of this device (or a wildcard), or ``localhost``.

    Raises:
        ValueError: for anything else (a name would need DNS, which the kiosk never uses).
    """
    if host == "localhost":
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{host!r} is not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or an address of this device)"
        ) from None
    return host


class ServerConfig(_Strict):
    """The kiosk page and the service API."""

    host: str = Field("127.0.0.1", description="Bind address (an IP address or localhost); loopback by default.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    token: SecretStr | None = Field(
        None,
        description="Bearer token required off loopback (or $CREDENTIALS_DIRECTORY/vanity-token); "
        "at least 16 characters, no spaces. Never printed.",
    )
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of the stream.")
    stream_fps: float = Field(30.0, gt=0, le=120, description="Most frames per second sent to one viewer.")
    allowed_origins: list[str] = Field(default_factory=list, description="CORS origins allowed (never '*').")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the page and API answer to besides localhost, 127.0.0.1 and ::1 (and the bind "
        "address): the names LAN clients use, e.g. 'kiosk.local' or '192.168.1.20'. Other Host headers get 421.",
    )
    max_connections: int = Field(
        64,
        ge=8,
        le=900,
        description="Open connections held at most. At the limit the oldest idle one is closed, so a flood of "
        "idle sockets never locks out /healthz; stays well below the open-file limit.",
    )
    max_streams: int = Field(
        8, ge=1, le=64, description="Live channels (MJPEG stream, server-sent events) served at once; more get 503."
    )
    header_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="A request (head and body) must arrive within this many seconds, or the connection is closed.",
    )
    keep_alive_s: float = Field(5.0, gt=0, le=300, description="An idle keep-alive connection is closed after this.")
    max_body_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request body accepted, in bytes (the API's JSON bodies are a few hundred); a larger "
        "one gets 413 before it is read past this, and a write without the token gets 401 before any of it is read.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return check_bind_host(v)

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            check_token(v.get_secret_value())
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for h in v:
            if not h or h == "*" or any(c in h for c in "/@ ") or not h.isascii():
                raise ValueError(f"{h!r} is not a host name or address (no wildcards, schemes or ports)")
        return [h.lower() for h in v]

    @model_validator(mode="after")
    def _streams_fit(self) -> ServerConfig:
        if self.max_streams > self.max_connections // 2:
            raise ValueError("max_streams must leave at least half of max_connections for other requests")
        return self


class SessionConfig(_Strict):
    """The customer's session."""

    reset_after_s: float = Field(
        20.0, gt=0, le=3600, description="Forget the analysis and look after this long with no face (at most an hour)."
    )


class SnapshotConfig(_Strict):
    """Photos the customer asks for; off by default."""

    enabled: bool = Field(False, description="Allow the customer to save a photo.")
    directory: Path = Field(Path("/var/lib/vanity/snapshots"), description="Where saved photos are kept (local only).")
    expire_hours: float = Field(
        24.0, gt=0, le=720, description="Saved photos are deleted after this long (at most 30 days)."
    )


class HealthConfig(_Strict):
    """Health loop and watchdog."""

    max_frame_age_s: float = Field(2.0, gt=0, description="Unhealthy when the last frame is older than this.")
    reconnect_min_s: float = Field(0.5, gt=0, description="First camera reconnect delay.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest camera reconnect delay.")


class VanityConfig(_Strict):
    """Everything the `vanity` daemon and tools can be told."""

    source: SourceConfig = Field(default_factory=DemoSourceConfig, description="Where frames come from.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model bundle and runtime.")
    detector: DetectorConfig = Field(
        default_factory=BlazeFaceDetectorConfig, description="Face detector for acquisition."
    )
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Tracking and measurement.")
    render: RenderConfig = Field(default_factory=RenderConfig, description="Mirror image.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="Kiosk page and API.")
    session: SessionConfig = Field(default_factory=SessionConfig, description="Customer session.")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig, description="Customer-requested photos.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Health and watchdog.")
    catalog: Path = Field(DEFAULT_CATALOG, description="Product catalogue file (TOML).")
    state_dir: Path = Field(
        Path("/var/lib/vanity"), description="The kiosk's own state: the colour calibration (vanity calibrate)."
    )


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        # A new source/detector kind replaces the section instead of merging
        # into the old kind's fields, which would be rejected as unknown keys.
        if (
            isinstance(v, dict)
            and isinstance(out.get(k), dict)
            and v.get("kind", out[k].get("kind")) == out[k].get("kind")
        ):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> VanityConfig:
    """Load the configuration: built-in defaults, then the file, then overrides.

    Raises:
        ConfigError: listing each problem with its location.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from e
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}", [f"{path}: {e}"]) from e
        base = path.parent
        # Relative paths in the file are relative to the file, not to the cwd.
        relative = (("model", "path"), ("source", "path"), ("snapshots", "directory"), ("analysis", "tone_model"))
        for section, key in relative:
            sec = data.get(section)
            if isinstance(sec, dict) and isinstance(sec.get(key), str) and not Path(sec[key]).is_absolute():
                sec[key] = str(base / sec[key])
        if isinstance(data.get("catalog"), str) and not Path(data["catalog"]).is_absolute():
            data["catalog"] = str(base / data["catalog"])
    if overrides:
        data = _merge(data, overrides)
    try:
        return VanityConfig.model_validate(data)
    except ValidationError as e:
        errors = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{loc}: {err['msg']}")
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{len(errors)} configuration error(s)", errors) from e


def changed_fields(cfg: VanityConfig) -> dict[str, Any]:
    """The settings that differ from the built-in defaults, as nested dicts."""
    default = VanityConfig().model_dump(mode="json")
    now = cfg.model_dump(mode="json")

    def diff(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict) and a.get("kind") == b.get("kind"):
            out = {k: diff(a.get(k), v) for k, v in b.items() if a.get(k) != v}
            return out
        return b

    return diff(default, now) if default != now else {}
