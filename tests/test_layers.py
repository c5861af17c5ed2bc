"""The package's layers import one way: every ``import`` of ``src/enrichflow`` is read (with
``ast``, so imports inside functions count too) and checked against the rules below, so a lower
layer that starts importing a higher one fails here rather than in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "enrichflow"

ABOVE_DB = (
    "api",
    "catalog",
    "cli",
    "conductor",
    "doctor",
    "executors",
    "export",
    "ingest",
    "launch",
    "runner",
    "steps",
    "webhooks",
)
RULES: dict[str, tuple[str, ...]] = {
    "db": ABOVE_DB,
    "webhooks": ("steps", "runner", "api", "cli", "conductor", "executors"),
    "normalize": ("db", *ABOVE_DB),
    "types": ("db", *ABOVE_DB),
    "columns": ("db", *ABOVE_DB),
    "export": ("steps",),
}
"""layer -> the top-level parts of ``enrichflow`` it must not import."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every ``enrichflow`` module ``source`` (the text of ``module``) imports, anywhere in it."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "enrichflow" or name.startswith("enrichflow.")}


def layer_of(module: str) -> str:
    """``enrichflow.db.models`` -> ``db``; ``enrichflow.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(module: str, imports: set[str]) -> list[str]:
    forbidden = RULES.get(layer_of(module), ())
    return sorted(f"{module} imports {name}" for name in imports if layer_of(name) in forbidden)


def test_the_rules_catch_an_upward_import() -> None:
    """The checker itself: an upward import, written plainly, lazily or relatively, is found."""
    source = (
        "from enrichflow.db.engine import reading\n"
        "def f():\n"
        "    from enrichflow.steps.base import StepContext\n"
        "from ..webhooks import signing\n"
    )
    found = violations("enrichflow.db.example", imported(source, "enrichflow.db.example"))
    assert found == [
        "enrichflow.db.example imports enrichflow.steps.base",
        "enrichflow.db.example imports enrichflow.steps.base.StepContext",
        "enrichflow.db.example imports enrichflow.webhooks",
        "enrichflow.db.example imports enrichflow.webhooks.signing",
    ]
    assert violations("enrichflow.steps.x", imported(source, "enrichflow.steps.x")) == []


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_one_way(path: Path) -> None:
    module = module_name(path)
    imports = imported(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    assert violations(module, imports) == []


def test_every_layer_with_rules_exists() -> None:
    """A renamed layer would leave its rule checking nothing."""
    layers = {layer_of(module_name(path)) for path in MODULES}
    assert set(RULES) <= layers
