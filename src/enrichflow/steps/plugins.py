"""Steps from other packages: imported once per process so their ``@handler`` decorators run.

Two sources, both read by every process that runs handlers (CLI, ``serve``, the conductor, the
Prefect flow, the Modal worker), because they all look handlers up through
:mod:`enrichflow.steps.registry`:

* the entry points of the group ``enrichflow.steps`` of every installed distribution
  (``[project.entry-points."enrichflow.steps"] title_length = "enrichflow_title_length"``);
* ``ENRICHFLOW_PLUGINS``: comma-separated module names, for a Modal image or a quick script
  that has a module on its path but no installed distribution.

A plugin that fails to import stops the process with a :class:`ConfigError` naming the module:
a step silently missing would fail every item of a batch instead.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from enrichflow.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "Plugin", "discover", "load_plugins", "loaded_plugins"]

ENTRY_POINT_GROUP = "enrichflow.steps"

_lock = threading.RLock()  # a plugin may look a handler up while it is being imported
_loaded: tuple[Plugin, ...] | None = None


@dataclass(frozen=True, slots=True)
class Plugin:
    """One module to import: ``source`` says where it was named (an entry point and its
    distribution, or ``ENRICHFLOW_PLUGINS``), for error messages and ``doctor``."""

    module: str
    source: str
    attribute: str | None = None
    distribution: str | None = None


def _from_environment(value: str) -> list[Plugin]:
    return [Plugin(name.strip(), "ENRICHFLOW_PLUGINS") for name in value.split(",") if name.strip()]


def discover(plugins_setting: str) -> list[Plugin]:
    """The plugins to import: entry points first (sorted by name), then ``plugins_setting``
    (the value of ``ENRICHFLOW_PLUGINS``), each module once."""
    found: list[Plugin] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        dist = point.dist.name if point.dist is not None else None
        source = f"entry point {point.name!r} of {dist or 'an unknown distribution'}"
        found.append(Plugin(point.module, source, point.attr or None, dist))
    found.extend(_from_environment(plugins_setting))
    seen: set[str] = set()
    unique = []
    for plugin in found:
        if plugin.module not in seen:
            seen.add(plugin.module)
            unique.append(plugin)
    return unique


def _import(plugin: Plugin) -> None:
    try:
        module = importlib.import_module(plugin.module)
        if plugin.attribute is not None:
            for name in plugin.attribute.split("."):
                module = getattr(module, name)
    except Exception as exc:
        raise ConfigError(
            f"step plugin {plugin.module!r} ({plugin.source}) failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_plugins() -> tuple[Plugin, ...]:
    """Import every plugin once per process; later calls return what was loaded. A failure
    is raised again on the next call, so no caller runs with a plugin missing."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            from enrichflow.config import get_settings

            plugins = discover(get_settings().plugins)
            for plugin in plugins:
                _import(plugin)
            _loaded = tuple(plugins)
    return _loaded


def loaded_plugins() -> tuple[Plugin, ...]:
    """The plugins this process has imported (empty before the first handler look-up)."""
    return _loaded or ()
