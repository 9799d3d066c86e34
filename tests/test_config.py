"""The configuration root: strict, located errors, layered over defaults."""

from __future__ import annotations

import pytest

from edge.config import ConfigError, VanityConfig, changed_fields, load_config


def test_defaults_are_private_and_valid():
    """Guards against a default that exposes the kiosk or stores photos."""
    cfg = load_config(None)
    assert cfg.server.host == "127.0.0.1"
    assert cfg.snapshots.enabled is False
    assert cfg.source.kind == "demo"


def test_every_field_is_described():
    """Guards against undocumented settings."""

    def walk(model):
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(VanityConfig)


def test_unknown_keys_and_bad_values_are_located(tmp_path):
    """Guards against typos that are silently ignored, and errors without a location."""
    p = tmp_path / "vanity.toml"
    p.write_text('[server]\nport = 99999\nhots = "0.0.0.0"\n[analysis]\nface_threshold = "high"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    text = "\n".join(e.value.errors)
    assert "server.port" in text and "server.hots" in text and "analysis.face_threshold" in text


def test_file_layers_over_defaults_and_kind_switches(tmp_path):
    """Guards against a source section that cannot change kind, or relative paths resolved from the cwd."""
    (tmp_path / "faces").mkdir()
    p = tmp_path / "vanity.toml"
    p.write_text('[source]\nkind = "image"\npath = "faces"\n[server]\nport = 9000\n')
    cfg = load_config(p)
    assert cfg.source.kind == "image" and cfg.source.path == tmp_path / "faces"
    assert cfg.server.port == 9000 and cfg.server.host == "127.0.0.1"
    assert changed_fields(cfg) == {
        "source": {"kind": "image", "path": str(tmp_path / "faces"), "fps": 15.0, "hold_s": 2.0},
        "server": {"port": 9000},
    }


def test_not_toml(tmp_path):
    """Guards against a traceback on a malformed file."""
    p = tmp_path / "bad.toml"
    p.write_text("[server\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
