"""Looks by name: the store's catalogue first, then the built-ins (one rule for the CLI, daemon and kiosk)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from edge.makeup import Look, builtin_looks

if TYPE_CHECKING:
    from edge.catalog import Catalog


def available_looks(catalog: Catalog | None) -> dict[str, Look]:
    """Every look by name: the built-ins, each replaced by the catalogue's look of the same name, then the rest."""
    looks = builtin_looks()
    if catalog is not None:
        looks.update({look.name: look for look in catalog.looks})
    return looks


def resolve_look(name: str, catalog: Catalog | None) -> Look:
    """A look by name, the catalogue's before a built-in.

    Raises:
        KeyError: neither has it.
    """
    looks = available_looks(catalog)
    if name not in looks:
        raise KeyError(f"unknown look {name!r}")
    return looks[name]


def without_kinds(look: Look, kinds: Iterable[str]) -> Look:
    """The look with every layer of these kinds taken off (named ``custom``)."""
    drop = set(kinds)
    return look.model_copy(update={"name": "custom", "layers": [lay for lay in look.layers if lay.kind not in drop]})


def without_sku(look: Look, sku: str) -> Look:
    """The look with one product taken off (named ``custom``)."""
    return look.model_copy(update={"name": "custom", "layers": [lay for lay in look.layers if lay.sku != sku]})


def with_layers_of(look: Look, other: Look) -> Look:
    """``other`` worn over the look: its layers replace the look's of the same kind.

    The result is named ``custom`` and keeps ``other``'s title (the product just added).
    """
    kept = without_kinds(look, {lay.kind for lay in other.layers}).layers
    return other.model_copy(update={"name": "custom", "layers": [*kept, *other.layers]})
