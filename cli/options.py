"""Options shared by several commands: ``--set`` overrides, the LLM response cache, default output folders."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

SET_HELP = "Override a scenario value, e.g. --set rounds=12 --set population.0.count=5 (repeatable)."


def cache_overrides(no_cache: bool, cache_dir: Path | None) -> tuple[str, ...]:
    """``--no-cache`` / ``--cache-dir`` as scenario overrides (so the run folder records them)."""
    extra: tuple[str, ...] = ()
    if no_cache:
        extra += ("cache.enabled=false",)
    if cache_dir is not None:
        extra += (f"cache.path={json.dumps(str(cache_dir.resolve()))}",)
    return extra


def default_out_dir(scenario_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{scenario_name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
