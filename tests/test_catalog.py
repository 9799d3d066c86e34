"""Tests of the product catalogue: the sample file, located errors, recommendations."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.catalog import CATEGORY_KINDS, CatalogError, load_catalog, parse_catalog
from edge.config import DEFAULT_CATALOG
from edge.makeup import Look
from edge.types import SkinTone

SAMPLE = Path(__file__).resolve().parents[1] / "edge" / "data" / "catalog.toml"

PRODUCT = """
[[products]]
brand = "B"
product = "P"
sku = "{sku}"
category = "lips"
kind = "lipstick"
shade = "S"
hex = "{hex}"
suits_monk = {monk}
suits_undertones = ["warm"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "catalog.toml"
    p.write_text(text)
    return p


def _product(sku="A-1", hex="#aa3344", monk='"3-6"') -> str:
    return PRODUCT.format(sku=sku, hex=hex, monk=monk)


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(_write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path))
    return info.value.errors


def test_sample_catalogue_loads_and_covers_the_range():
    """Guards against shipping a broken or lopsided sample catalogue."""
    assert SAMPLE.samefile(DEFAULT_CATALOG)
    cat = load_catalog(SAMPLE)
    assert 25 <= len(cat.products) <= 40
    assert {p.category for p in cat.products} == set(CATEGORY_KINDS)
    assert {p.kind for p in cat.products} == {"lipstick", "blush", "eyeshadow", "eyeliner", "brows", "foundation"}
    assert 4 <= len(cat.looks) <= 6
    for look in cat.looks:
        assert isinstance(look, Look) and look.layers and all(layer.sku for layer in look.layers)
    foundations = [p for p in cat.products if p.category == "face"]
    assert set().union(*(p.suits_monk for p in foundations)) == set(range(1, 11))
    for undertone in ("warm", "neutral", "cool"):
        assert any(undertone in p.suits_undertones for p in foundations)


def test_bad_hex_is_located(tmp_path):
    """Guards against a typo'd shade colour loading silently (or failing without saying where)."""
    errors = _errors(tmp_path, _product() + _product(sku="A-2", hex="#zz1234"))
    assert len(errors) == 1
    assert errors[0].startswith("products[1] (sku 'A-2').hex:") and "#rrggbb" in errors[0]


def test_duplicate_sku_is_located(tmp_path):
    """Guards against two products sharing a SKU (the kiosk would show the wrong one)."""
    errors = _errors(tmp_path, _product() + _product())
    assert errors == ["products[1].sku: duplicate sku 'A-1' (first at products[0])"]


def test_unknown_sku_in_look_is_located(tmp_path):
    """Guards against a look that references a product the store does not have."""
    look = '\n[[looks]]\nname = "x"\ntitle = "X"\nlayers = [{ sku = "A-1" }, { sku = "NOPE" }]\n'
    errors = _errors(tmp_path, _product() + look)
    assert errors == ["looks[0] (name 'x').layers[1].sku: unknown sku 'NOPE'"]


@pytest.mark.parametrize("monk", ["[0, 3]", "[3, 11]", '"4-12"', '"6-2"', '"dark"'])
def test_out_of_range_monk_is_located(tmp_path, monk):
    """Guards against Monk steps outside 1..10 (or malformed ranges) in a product."""
    errors = _errors(tmp_path, _product(monk=monk))
    assert len(errors) >= 1
    assert all(e.startswith("products[0] (sku 'A-1').suits_monk") for e in errors), errors


def test_unknown_key_bad_toml_missing_file_and_many_errors(tmp_path):
    """Guards against silently ignored keys, unhelpful parse errors, and reporting only the first problem."""
    errors = _errors(tmp_path, _product().replace('shade = "S"', 'shade = "S"\nshine = 3'))
    assert errors == ["products[0] (sku 'A-1').shine: unknown key"]
    errors = _errors(tmp_path, "[[products]\nbrand = 1\n")
    assert len(errors) == 1 and errors[0].startswith("not valid TOML") and "line 1" in errors[0]
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.toml")
    many = _product(hex="blue") + _product(sku="A-2", monk="[42]") + _product(sku="A-3").replace("lipstick", "blush")
    errors = _errors(tmp_path, many)
    assert len(errors) == 3
    assert any(e.startswith("products[2] (sku 'A-3'):") and "category 'lips'" in e for e in errors), errors


def test_recommendations_match_tone_and_undertone():
    """Guards against recommending shades made for another skin tone or undertone."""
    cat = load_catalog(SAMPLE)
    for monk in range(1, 11):
        for undertone in ("warm", "neutral", "cool"):
            tone = SkinTone(monk=monk, undertone=undertone, lab=(50.0, 10.0, 20.0))
            recs = cat.recommend(tone, limit=5)
            assert recs, (monk, undertone)
            for r in recs:
                assert undertone in r.product.suits_undertones
                assert min(abs(m - monk) for m in r.product.suits_monk) <= 1
                assert f"{undertone} undertone, Monk {monk}" in r.reason
            scores = [r.score for r in recs]
            assert scores == sorted(scores)


def test_recommend_reason_category_and_limit():
    """Guards against unreadable reasons, ignored category filters and limits."""
    cat = load_catalog(SAMPLE)
    tone = SkinTone(monk=6, undertone="warm", lab=(55.0, 10.0, 27.0))
    recs = cat.recommend(tone)
    assert len(recs) == 3
    assert recs[0].reason == "warm undertone, Monk 6"
    assert len({r.product.category for r in recs}) == 3, "without a category, cover different shelves first"
    lips = cat.recommend(tone, category="lips", limit=10)
    assert lips and all(r.product.category == "lips" for r in lips)
    assert {r.product.sku for r in lips} >= {"LL-LIP-104", "KR-GLS-202"}
    assert "LL-LIP-101" not in {r.product.sku for r in lips}  # a cool pink
    with pytest.raises(ValueError):
        cat.recommend(tone, category="nails")


def test_looks_and_single_product_looks():
    """Guards against looks that lose their products' shades, and unknown names passing silently."""
    cat = load_catalog(SAMPLE)
    assert set(cat.look_names()) == {look.name for look in cat.looks}
    look = cat.look(cat.look_names()[0])
    for layer in look.layers:
        p = cat.product(layer.sku)
        assert (layer.kind, layer.color, layer.finish) == (p.kind, p.hex, p.finish)
    single = cat.look_for("LL-LIP-105", 0.4)
    assert [(s.kind, s.color, s.intensity, s.sku) for s in single.layers] == [
        ("lipstick", "#b3172f", 0.4, "LL-LIP-105")
    ]
    with pytest.raises(KeyError):
        cat.look("no-such-look")
    with pytest.raises(KeyError):
        cat.look_for("NOPE", 0.5)


def test_parse_catalog_from_mapping():
    """Guards against the in-memory path diverging from the file path."""
    cat = parse_catalog({"products": [], "looks": []})
    assert cat.products == [] and cat.recommend(SkinTone(5, "neutral", (60.0, 10.0, 20.0))) == []
