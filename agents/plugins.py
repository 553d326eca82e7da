"""Plug-in registries: games, value-dynamics rules and deciders, each registered by its ``kind``.

hvae looks up every game (``menus: {kind: …}``), rule (``dynamics: {rule: …}``) and decider
(``decider: {kind: …}``) of a scenario here; the scenario schema, the YAML loader's error messages,
the dashboard's lists and the generated docs are all built from these registries, so a new kind is
one module (a config class and a class that plays it) plus one test — no list to edit elsewhere.

A plug-in is a class with a ``kind`` and a ``Config``: a pydantic model whose ``kind`` (``rule`` for
dynamics rules) field is ``Literal[<kind>]``. Register one from a notebook, a test or your own
package::

    from hvae.simulation.games import register_game       # or hvae.simulation.dynamics.register_rule,
    register_game(MyGame)                                 #    hvae.agents.deciders.register_decider

or without importing hvae at all, as an entry point of your package (hvae loads the group the first
time it looks a kind up)::

    [project.entry-points."hvae.games"]      # also "hvae.rules" and "hvae.deciders"
    my_game = "my_package.games:MyGame"

A registry entry keeps the config class (what the schema validates) apart from the class that does
the work (``plugin``), because the shipped configs live below the rooms that implement them: the
scenario schema registers the shipped configs, :mod:`hvae.simulation.games`,
:mod:`hvae.simulation.dynamics` and :mod:`hvae.agents.deciders` attach their implementations.
Listeners (the schema) are told after every registration, so a scenario validated after
``register_game`` accepts the new kind.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)


class PluginError(ValueError):
    """A plug-in that cannot be registered (no kind, no config, a kind taken by another class)."""


@dataclass
class Entry:
    """One registered kind: its config class and (once attached) the class that plays it."""

    kind: str
    config: type
    plugin: Any = None


class Registry:
    """Plug-ins of one family, by kind, in registration order (shipped kinds first).

    Args:
        family: what the plug-ins are, for messages (``game``, ``rule``, ``decider``).
        tag: the config field that names the kind (``kind``; ``rule`` for dynamics rules).
        group: the entry-point group read on first lookup (``hvae.games``, …).
    """

    def __init__(self, family: str, tag: str, group: str) -> None:
        self.family = family
        self.tag = tag
        self.group = group
        self._entries: dict[str, Entry] = {}
        self._listeners: list[Callable[[], None]] = []
        self._entry_points_loaded = False

    # ---------------------------------------------------------------- registering
    def kind_of(self, config: type) -> str:
        """The kind a config class names: the one value of its ``Literal`` tag field."""
        return _literal_kind(config, self.tag, self.family)

    def add_config(self, config: type, kind: str | None = None) -> str:
        """Register a config class (the schema's part); returns its kind."""
        kind = kind or self.kind_of(config)
        entry = self._entries.get(kind)
        if entry is not None and entry.config is not config:
            raise PluginError(f"{self.family} kind {kind!r} is already registered (by {entry.config.__qualname__})")
        if entry is None:
            self._entries[kind] = Entry(kind, config)
            self._changed()
        return kind

    def attach(self, kind: str, plugin: Any) -> None:
        """Attach the class that plays an already registered kind."""
        if kind not in self._entries:
            raise PluginError(f"{self.family} kind {kind!r} has no registered config")
        self._entries[kind].plugin = plugin

    def register(self, plugin: Any) -> Any:
        """Register a plug-in class (its ``Config`` and itself); returns it, so it works as a decorator."""
        config = getattr(plugin, "Config", None)
        if not isinstance(config, type):
            raise PluginError(f"{self.family} plug-in {plugin!r} needs a Config class (a pydantic model)")
        kind = self.add_config(config, getattr(plugin, "kind", None))
        entry = self._entries[kind]
        if entry.plugin is not None and entry.plugin is not plugin:
            raise PluginError(f"{self.family} kind {kind!r} is already played by {entry.plugin!r}")
        entry.plugin = plugin
        return plugin

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every later registration (the schema rebuilds its unions)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # ---------------------------------------------------------------- looking up
    def load_entry_points(self) -> None:
        """Register the plug-ins other packages declare in this registry's entry-point group (once)."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for point in _entry_points(self.group):
            try:
                plugin = point.load()
            except Exception as error:  # noqa: BLE001 - a broken third-party package must not stop hvae
                log.warning("hvae: %s plug-in %r (entry point %s) cannot be loaded: %s", self.family, point.name, point.value, error)
                continue
            if self.get(getattr(plugin, "kind", "") or "") is None or self._entries[plugin.kind].plugin is not plugin:
                self.register(plugin)

    def get(self, kind: str) -> Entry | None:
        return self._entries.get(kind)

    def plugin(self, kind: str) -> Any:
        """The class that plays ``kind``; a :class:`PluginError` naming the known kinds otherwise.

        Entry points are read only for a kind not registered yet (a shipped kind never waits on the scan).
        """
        entry = self._entries.get(kind)
        if entry is None or entry.plugin is None:
            self.load_entry_points()
            entry = self._entries.get(kind)
        if entry is None or entry.plugin is None:
            raise PluginError(f"unknown {self.family} kind {kind!r}; known: {', '.join(self.kinds())}")
        return entry.plugin

    def kinds(self) -> list[str]:
        """Every registered kind, shipped first."""
        self.load_entry_points()
        return list(self._entries)

    def configs(self) -> list[type]:
        return [entry.config for entry in self._entries.values()]

    def __iter__(self) -> Iterator[Entry]:
        self.load_entry_points()
        return iter(list(self._entries.values()))

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def reference(self) -> str:
        """A Markdown section listing every registered kind with its keys and defaults (for the docs)."""
        lines = [f"## {self.family.capitalize()}s (`{self.tag}:`, entry-point group `{self.group}`)", ""]
        for entry in self:
            doc = " ".join((entry.config.__doc__ or "").split())
            lines += [f"### `{entry.kind}`", "", doc, ""] if doc else [f"### `{entry.kind}`", ""]
            fields = getattr(entry.config, "model_fields", {})
            for name, field in fields.items():
                if name == self.tag:
                    continue
                default = "required" if field.is_required() else f"default `{field.get_default(call_default_factory=True)!r}`"
                lines.append(f"- `{name}`: {default}")
            if any(name != self.tag for name in fields):
                lines.append("")
        return "\n".join(lines)


@functools.lru_cache(maxsize=16)
def _group_entry_points(group: str, path: tuple[str, ...]) -> metadata.EntryPoints:
    """The entry points of ``group`` of the distributions on ``path``, read once (a scan costs ~0.05 s)."""
    return metadata.entry_points(group=group)


def _entry_points(group: str) -> metadata.EntryPoints:
    return _group_entry_points(group, tuple(sys.path))


def _literal_kind(config: type, tag: str, family: str) -> str:
    """The one value of the config's ``Literal`` tag field."""
    fields = getattr(config, "model_fields", None)
    field = fields.get(tag) if fields else None
    values = getattr(getattr(field, "annotation", None), "__args__", ())
    if len(values) != 1 or not isinstance(values[0], str):
        raise PluginError(f"{family} config {config.__qualname__} needs a field {tag}: Literal['<kind>']")
    return values[0]


#: ``menus: {kind: …}``: games and their menus (:mod:`hvae.simulation.games`).
GAMES = Registry("game", "kind", "hvae.games")
#: ``dynamics: {rule: …}``: value-dynamics rules (:mod:`hvae.simulation.dynamics`).
RULES = Registry("rule", "rule", "hvae.rules")
#: ``decider: {kind: …}``: who chooses (:mod:`hvae.agents.deciders`, :mod:`hvae.agents.llm.decider`).
DECIDERS = Registry("decider", "kind", "hvae.deciders")
