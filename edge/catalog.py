"""The store's product catalogue: products, their shades and who they suit, and ready-made looks.

The catalogue is one TOML file, validated on load (unknown keys are rejected) so a typo
in the store's file is reported with its location instead of showing a wrong shade::

    [[products]]
    brand = "Lumen & Lace"
    product = "Velvet Lip Colour"
    sku = "LL-LIP-101"
    category = "lips"          # lips | cheeks | eyes | brows | face
    kind = "lipstick"          # the makeup layer that shows it
    shade = "Rosewood"
    hex = "#a8545e"
    finish = "satin"           # matte | satin | gloss | shimmer
    suits_monk = "3-7"         # a range "a-b", or a list [3, 4, 5]
    suits_undertones = ["cool", "neutral"]

    [[looks]]
    name = "office"
    title = "Office day"
    layers = [{ sku = "LL-LIP-101", intensity = 0.6 }]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from edge.makeup.base import Finish, HexColor, LayerKind, LayerSpec, Look
from edge.types import SkinTone, Undertone

Category = Literal["lips", "cheeks", "eyes", "brows", "face"]

CATEGORY_KINDS: dict[str, tuple[str, ...]] = {
    "lips": ("lipstick",),
    "cheeks": ("blush",),
    "eyes": ("eyeshadow", "eyeliner"),
    "brows": ("brows",),
    "face": ("foundation",),
}
"""Which layer kinds each category may use."""

_CATEGORY_ORDER = ("face", "lips", "cheeks", "eyes", "brows")


class CatalogError(ValueError):
    """The catalogue file is missing or invalid; ``errors`` lists every problem with its location."""

    def __init__(self, path: Path | str, errors: list[str]):
        self.path = str(path)
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(errors))


def _monk_range(value: Any) -> Any:
    """Accept ``"3-6"`` (inclusive) or a single int as well as a list."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        parts = value.replace("..", "-").split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a Monk range like '3-6'")
        lo, hi = int(parts[0]), int(parts[1])
        if lo > hi:
            raise ValueError(f"Monk range {value!r} is reversed")
        return list(range(lo, hi + 1))
    return value


MonkStep = Annotated[int, Field(ge=1, le=10)]


class Product(BaseModel):
    """One product in one shade."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: str = Field(min_length=1, description="Brand name.")
    product: str = Field(min_length=1, description="Product line name.")
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Unique SKU.")
    category: Category = Field(description="Shelf category.")
    kind: LayerKind = Field(description="Makeup layer that renders it.")
    shade: str = Field(min_length=1, description="Shade name.")
    hex: HexColor = Field(description="Shade colour '#rrggbb' (sRGB).")
    finish: Finish = Field("satin", description="Surface finish.")
    suits_monk: Annotated[list[MonkStep], BeforeValidator(_monk_range), AfterValidator(lambda v: sorted(set(v)))] = (
        Field(min_length=1, description="Monk Skin Tone steps (1-10) the shade is made for; a list or a range 'a-b'.")
    )
    suits_undertones: list[Undertone] = Field(min_length=1, description="Undertones the shade is made for.")

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        if self.kind not in CATEGORY_KINDS[self.category]:
            raise ValueError(
                f"kind {self.kind!r} does not belong to category {self.category!r} "
                f"(expected one of {', '.join(CATEGORY_KINDS[self.category])})"
            )
        if len(set(self.suits_undertones)) != len(self.suits_undertones):
            raise ValueError("suits_undertones lists an undertone twice")
        return self

    def layer(self, intensity: float = 0.7) -> LayerSpec:
        """The makeup layer showing this product."""
        return LayerSpec(kind=self.kind, color=self.hex, intensity=intensity, finish=self.finish, sku=self.sku)


class LookLayer(BaseModel):
    """A product in a look."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, description="SKU of a product in this catalogue.")
    intensity: float = Field(0.6, ge=0.0, le=1.0, description="Layer opacity.")


class LookEntry(BaseModel):
    """A ready-made look built from catalogue products."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Machine name.")
    title: str = Field(min_length=1, description="Human title.")
    layers: list[LookLayer] = Field(min_length=1, description="Products and intensities.")


class CatalogFile(BaseModel):
    """The TOML file's top level."""

    model_config = ConfigDict(extra="forbid")

    products: list[Product] = Field(default_factory=list, description="Every product.")
    looks: list[LookEntry] = Field(default_factory=list, description="Ready-made looks.")


@dataclass(frozen=True)
class Recommendation:
    """A product suggested for a skin tone.

    Attributes:
        product: the product.
        reason: why, for people: e.g. "warm undertone, Monk 6".
        score: 0 is a perfect match; lower is better.
    """

    product: Product
    reason: str
    score: float


def _loc(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """``('products', 3, 'hex')`` -> ``products[3] (sku 'X').hex``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            if i == 1 and loc[0] in ("products", "looks"):
                try:
                    item = raw[loc[0]][part]
                    key = "sku" if loc[0] == "products" else "name"
                    if isinstance(item, dict) and isinstance(item.get(key), str):
                        out += f" ({key} {item[key]!r})"
                except (KeyError, IndexError, TypeError):
                    pass
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(err: ValidationError, raw: dict[str, Any]) -> list[str]:
    msgs = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        msgs.append(f"{_loc(tuple(e['loc']), raw)}: {msg}")
    return msgs


class Catalog:
    """A validated catalogue.

    Attributes:
        products: every product, in file order.
        looks: the catalogue's looks as renderable ``Look`` objects.
    """

    def __init__(self, data: CatalogFile, path: Path | str = "<memory>"):
        self.path = str(path)
        self.products: list[Product] = list(data.products)
        self._by_sku = {p.sku: p for p in self.products}
        self.looks: list[Look] = [
            Look(
                name=entry.name,
                title=entry.title,
                layers=[self._by_sku[layer.sku].layer(layer.intensity) for layer in entry.layers],
            )
            for entry in data.looks
        ]
        self._looks = {look.name: look for look in self.looks}

    def product(self, sku: str) -> Product:
        """A product by SKU.

        Raises:
            KeyError: unknown SKU.
        """
        if sku not in self._by_sku:
            raise KeyError(sku)
        return self._by_sku[sku]

    def look_names(self) -> list[str]:
        """Names of the catalogue's looks."""
        return [look.name for look in self.looks]

    def look(self, name: str) -> Look:
        """A catalogue look by name.

        Raises:
            KeyError: no such look.
        """
        if name not in self._looks:
            raise KeyError(name)
        return self._looks[name]

    def look_for(self, sku: str, intensity: float = 0.7) -> Look:
        """A one-product look to try a single SKU.

        Raises:
            KeyError: unknown SKU.
        """
        p = self.product(sku)
        return Look(name=f"sku:{p.sku}", title=f"{p.brand} {p.product} – {p.shade}", layers=[p.layer(intensity)])

    def recommend(self, tone: SkinTone, category: str | None = None, limit: int = 3) -> list[Recommendation]:
        """Products made for this tone, best first.

        Exact matches (the Monk step and the undertone are both listed) come first,
        then near matches (one Monk step off, the undertone listed), never others.
        Without a category, the first picks cover different categories.

        Raises:
            ValueError: unknown category.
        """
        if category is not None and category not in CATEGORY_KINDS:
            raise ValueError(f"unknown category {category!r}; expected one of {', '.join(CATEGORY_KINDS)}")
        scored: list[tuple[float, float, int, str, Recommendation]] = []
        for p in self.products:
            if category is not None and p.category != category:
                continue
            if tone.undertone not in p.suits_undertones:
                continue
            gap = min(abs(m - tone.monk) for m in p.suits_monk)
            if gap > 1:
                continue
            label = f"{tone.undertone} undertone, Monk {tone.monk}"
            if gap == 0:
                reason = label
            else:
                lo, hi = p.suits_monk[0], p.suits_monk[-1]
                made = f"Monk {lo}" if lo == hi else f"Monk {lo}–{hi}"
                reason = f"close match for {label} (made for {made})"
            # Prefer shades centred on the tone, then more specific ones.
            centre = abs((p.suits_monk[0] + p.suits_monk[-1]) / 2.0 - tone.monk)
            spec = len(p.suits_monk) + len(p.suits_undertones)
            rec = Recommendation(p, reason, float(gap))
            scored.append((float(gap), centre, spec, p.sku, rec))
        scored.sort(key=lambda t: t[:4])
        ranked = [t[4] for t in scored]
        if category is not None:
            return ranked[:limit]
        # Exact matches before near ones; within each, one product per shelf before seconds.
        nth: dict[str, int] = {}
        keyed = []
        for i, rec in enumerate(ranked):
            cat = rec.product.category
            keyed.append((rec.score, nth.get(cat, 0), _CATEGORY_ORDER.index(cat), i, rec))
            nth[cat] = nth.get(cat, 0) + 1
        keyed.sort(key=lambda t: t[:4])
        return [t[4] for t in keyed[:limit]]


def parse_catalog(raw: dict[str, Any], path: Path | str = "<memory>") -> Catalog:
    """Validate an already-parsed catalogue mapping.

    Raises:
        CatalogError: with every problem and its location.
    """
    try:
        data = CatalogFile.model_validate(raw)
    except ValidationError as e:
        raise CatalogError(path, _format_errors(e, raw)) from None
    errors: list[str] = []
    first: dict[str, int] = {}
    for i, p in enumerate(data.products):
        if p.sku in first:
            errors.append(f"products[{i}].sku: duplicate sku {p.sku!r} (first at products[{first[p.sku]}])")
        else:
            first[p.sku] = i
    names: dict[str, int] = {}
    for i, look in enumerate(data.looks):
        if look.name in names:
            errors.append(f"looks[{i}].name: duplicate look {look.name!r} (first at looks[{names[look.name]}])")
        else:
            names[look.name] = i
        for j, layer in enumerate(look.layers):
            where = f"looks[{i}] (name {look.name!r}).layers[{j}].sku"
            if layer.sku not in first:
                errors.append(f"{where}: unknown sku {layer.sku!r}")
    if errors:
        raise CatalogError(path, errors)
    return Catalog(data, path)


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate a catalogue TOML file.

    Raises:
        CatalogError: the file is missing, is not TOML, or is invalid; every problem is
            listed with its location (``products[3] (sku 'X').hex: ...``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(path, [f"cannot read the file ({e.strerror or e})"]) from None
    except UnicodeDecodeError as e:
        raise CatalogError(path, [f"not UTF-8 text (offset {e.start})"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(path, [f"not valid TOML: {e}"]) from None
    return parse_catalog(raw, path)
