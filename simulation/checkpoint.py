"""Checkpoints: everything a run needs to continue exactly where it stopped — and nothing that runs.

A model is rebuilt from its resolved scenario (``scenario.yaml``) — graph, placement, values and
deciders come out identical because they are drawn from the seed — and then the checkpoint
restores what changed since: the round counter, every agent's state (payoffs, histories, counts,
current values), the state of **every** random stream (matching, decisions per group, dynamics,
Mesa's own generators), the LLM agents' setup conversations and accounting, the backends' error
counts, and how many rows of each table the store had written. The runner writes a checkpoint
right after each flush of rows, so a run killed at any moment (even by SIGKILL) resumes from the
last flushed round: rows written after that checkpoint are cut away on resume, so no round is
lost or duplicated.

**Format (version 3).** A checkpoint is data only, so resuming a folder someone else made can
never execute code from it (the first format was a pickle, which can):

``checkpoint-<digest>.npz``
    the numeric arrays (agent state, histories, the dynamics rule's arrays as ``dynamics.<name>``),
    written by ``numpy.savez`` and read with ``allow_pickle=False``;
``checkpoint.json``
    the manifest: ``format: hvae-checkpoint``, ``version``, the round, the population's shape,
    random-stream states, the deciders' and the dynamics rule's snapshots (plain JSON), row counts,
    and the name and SHA-256 of its arrays file.

Version 3 gave each dynamics rule its own state (:meth:`hvae.simulation.dynamics.Rule.snapshot`);
a version 2 checkpoint is read by moving its fitness baseline and recent choices into the rule's.

Writing is atomic for the pair: the arrays file is written under a temporary name, synced and
renamed to a name that no manifest uses yet, then the manifest is written the same way and
renamed over ``checkpoint.json`` — the rename is the commit point — and only then are older arrays
files removed. A kill at any moment leaves the previous manifest and the arrays it names intact.
Loading validates everything before the model is touched (format, version, types, the arrays
file's digest, every array's shape and dtype against the freshly built model); any problem is one
:class:`CheckpointError` line. A ``checkpoint.pkl`` (the old format, or something else's pickle) is
refused without being opened.

    state = capture(model, rows_written)      # a Checkpoint: JSON manifest + arrays
    save(run_dir, state)
    state = load(run_dir)                      # validated; None when the run has no checkpoint
    restore(model, state)                      # on a freshly built model of the same scenario
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hvae.agents.deciders import KeepsState
from hvae.files.atomic import write_bytes_atomic
from hvae.files.untrusted import UnsafeFile, one_line, read_regular
from hvae.simulation.store import RunFolderError, RunStore

if TYPE_CHECKING:
    from hvae.simulation.model import HvaeModel

CHECKPOINT_FILE = "checkpoint.json"
LEGACY_FILE = "checkpoint.pkl"
FORMAT = "hvae-checkpoint"
FORMAT_VERSION = 3
_DYNAMICS = "dynamics."  # prefix of the dynamics rule's arrays
_ARRAYS_PREFIX = "checkpoint-"
#: Bounds on what a resume reads from a folder (a checkpoint larger than these is refused unread).
MAX_MANIFEST_BYTES = 1 << 30
MAX_ARRAYS_BYTES = 16 << 30
MAX_ARRAYS = 100_000


class CheckpointError(RunFolderError):
    """A checkpoint that cannot be used (legacy pickle, damaged, foreign, or for another scenario)."""


@dataclass
class Checkpoint:
    """One checkpoint: the JSON manifest's state and the numeric arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def round(self) -> int:
        return int(self.meta["round"])

    @property
    def rows_written(self) -> dict[str, int]:
        return dict(self.meta["rows_written"])

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.meta.get("extra") or {})


# ---------------------------------------------------------------------------------- JSON values
def _json_value(value: Any) -> Any:
    """A random-stream state (or similar) as JSON: numpy scalars and arrays become tagged lists."""
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _from_json_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _from_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json_value(v) for v in value]
    return value


# ---------------------------------------------------------------------------------- capture / restore
_MODEL_ARRAYS = ("initial_theta", "n_value_changes")


def capture(model: HvaeModel, rows_written: dict[str, int], extra: dict[str, Any] | None = None) -> Checkpoint:
    """The model's mutable state as a :class:`Checkpoint` (JSON-able manifest + arrays)."""
    deciders = {name: decider.snapshot() for name, decider in model.deciders.items() if isinstance(decider, KeepsState)}
    arrays: dict[str, np.ndarray] = {}
    for item in fields(model.state):
        arrays[f"state.{item.name}"] = np.array(getattr(model.state, item.name), copy=True)
    for name in _MODEL_ARRAYS:
        arrays[name] = np.array(getattr(model, name), copy=True)
    dynamics_meta, dynamics_arrays = model.dynamics.snapshot()
    arrays.update({_DYNAMICS + key: np.array(value, copy=True) for key, value in dynamics_arrays.items()})
    random_state = model.random.getstate()
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "round": int(model.round),
        "n_agents": int(model.n_agents),
        "history_length": int(model.state.hist_given.shape[1]),
        "dynamics": {"rule": model.dynamics.name, **_json_value(dynamics_meta)},
        "streams": {name: _json_value(rng.bit_generator.state) for name, rng in model.streams.items()},
        "decider_rngs": {name: _json_value(rng.bit_generator.state) for name, rng in model.decider_rngs.items()},
        "mesa_rng": _json_value(model.rng.bit_generator.state),
        "mesa_random": [random_state[0], list(random_state[1]), random_state[2]],
        "log_totals": {k: int(v) for k, v in model.log.totals.items()},
        "deciders": deciders,
        "backend_health": model.llm.health_reports(),
        "rows_written": {k: int(v) for k, v in rows_written.items()},
        "extra": dict(extra or {}),
    }
    return Checkpoint(meta, arrays)


def restore(model: HvaeModel, state: Checkpoint) -> None:
    """Put a checkpoint back into a freshly built model of the same scenario.

    Everything is checked against the model before anything is changed.

    Raises:
        CheckpointError: the checkpoint does not fit this model (another scenario, or damaged).
    """
    if state.meta.get("version") == 2:
        _upgrade_v2(state.meta, state.arrays, model.dynamics.name)
    meta, arrays = state.meta, state.arrays
    problem = _misfit(model, state)
    if problem:
        raise CheckpointError(f"the checkpoint does not fit this run's scenario: {problem}")
    try:
        for item in fields(model.state):
            setattr(model.state, item.name, arrays[f"state.{item.name}"].copy())
        for name in _MODEL_ARRAYS:
            setattr(model, name, arrays[name].copy())
        model.dynamics.restore(_from_json_value(meta["dynamics"]), _dynamics_arrays(arrays))
        for name, rng_state in meta["streams"].items():
            model.streams[name].bit_generator.state = _from_json_value(rng_state)
        for name, rng_state in meta["decider_rngs"].items():
            model.decider_rngs[name].bit_generator.state = _from_json_value(rng_state)
        model.rng.bit_generator.state = _from_json_value(meta["mesa_rng"])
        version, internal, gauss = meta["mesa_random"]
        model.random.setstate((int(version), tuple(int(x) for x in internal), gauss))
        model.log.totals.update({k: int(v) for k, v in meta["log_totals"].items()})
        for name, snapshot in meta["deciders"].items():
            decider = model.deciders[name]
            assert isinstance(decider, KeepsState)  # checked by _misfit
            decider.restore(snapshot)
        model.llm.restore_health(meta.get("backend_health") or {})
        model.round = int(meta["round"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CheckpointError(f"the checkpoint is damaged ({type(error).__name__}: {error})") from None


def _misfit(model: HvaeModel, state: Checkpoint) -> str | None:
    """Why the checkpoint cannot belong to ``model`` (None when it fits)."""
    meta, arrays = state.meta, state.arrays
    if meta.get("n_agents") != model.n_agents:
        return f"{meta.get('n_agents')} agents, the scenario has {model.n_agents}"
    expected = {f"state.{f.name}": getattr(model.state, f.name) for f in fields(model.state)}
    expected.update({name: getattr(model, name) for name in _MODEL_ARRAYS})
    for key, like in expected.items():
        found = arrays.get(key)
        if found is None:
            return f"array {key} is missing"
        if found.shape != like.shape or found.dtype.kind != like.dtype.kind:
            return f"array {key} is {found.dtype}{list(found.shape)}, expected {like.dtype}{list(like.shape)}"
    dynamics = meta.get("dynamics")
    if not isinstance(dynamics, dict) or dynamics.get("rule") != model.dynamics.name:
        return f"the dynamics rule differs (the run's is {model.dynamics.name!r})"
    problem = model.dynamics.misfit(dynamics, _dynamics_arrays(arrays))
    if problem:
        return problem
    if set(meta.get("streams") or {}) != set(model.streams):
        return "random streams differ"
    if set(meta.get("decider_rngs") or {}) != set(model.decider_rngs):
        return f"groups differ ({', '.join(sorted(meta.get('decider_rngs') or {}))})"
    snapshots = meta.get("deciders")
    if not isinstance(snapshots, dict):
        return "decider snapshots are missing"
    for name in snapshots:
        if not isinstance(model.deciders.get(name), KeepsState):
            return f"group {name!r} has no decider that keeps state"
    return None


def _dynamics_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key[len(_DYNAMICS):]: value for key, value in arrays.items() if key.startswith(_DYNAMICS)}


def _upgrade_v2(meta: dict[str, Any], arrays: dict[str, np.ndarray], rule: str) -> None:
    """A version 2 checkpoint in version 3's shape: its fitness baseline and recent choices were
    the model's; they are the dynamics rule's now (``rule``: the rule of the run's scenario)."""
    meta["version"] = FORMAT_VERSION
    if "payoff_at_last_update" in arrays:
        arrays[_DYNAMICS + "payoff_at_last_update"] = arrays.pop("payoff_at_last_update")
    for key in [k for k in arrays if k.startswith("recent.")]:
        arrays[_DYNAMICS + key] = arrays.pop(key)
    menus = meta.pop("recent_menus", [])
    meta["dynamics"] = {"rule": rule, "recent_menus": menus}
    if rule != "influence":  # only influence read the recent choices; the others keep none
        meta["dynamics"] = {"rule": rule}
        for key in [k for k in arrays if k.startswith(_DYNAMICS + "recent.")]:
            del arrays[key]


# ---------------------------------------------------------------------------------- files
def save(path: str | Path, state: Checkpoint) -> None:
    """Write ``state`` into run folder ``path`` (arrays first, manifest last; see the module docstring)."""
    folder = Path(path)
    buffer = io.BytesIO()
    # numpy's stub types **kwds as its own keyword parameters (allow_pickle: bool); the keys here are
    # dotted array names ("state.theta", "dynamics.…"), never a keyword of savez
    savez: Any = np.savez
    savez(buffer, **state.arrays)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    arrays_name = f"{_ARRAYS_PREFIX}{digest[:16]}.npz"
    _write_synced(folder / arrays_name, data)
    manifest = {**state.meta, "arrays": {"file": arrays_name, "sha256": digest, "keys": sorted(state.arrays)}}
    _write_synced(folder / CHECKPOINT_FILE, (json.dumps(manifest) + "\n").encode("utf-8"))
    _sync_folder(folder)
    for old in folder.glob(f"{_ARRAYS_PREFIX}*.npz"):  # only now: the manifest no longer names them
        if old.name != arrays_name:
            old.unlink(missing_ok=True)


def _write_synced(target: Path, data: bytes) -> None:
    write_bytes_atomic(target, data, sync=True)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove(path: str | Path) -> None:
    """Delete a run folder's checkpoint (manifest first, then its arrays)."""
    folder = Path(path)
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)
    for old in folder.glob(f"{_ARRAYS_PREFIX}*.npz"):
        old.unlink(missing_ok=True)


def load(path: str | Path) -> Checkpoint | None:
    """The validated checkpoint of run folder ``path``, or None when the run has none.

    Raises:
        CheckpointError: a legacy pickle checkpoint (never opened), or a manifest or arrays file
            that is damaged or not hvae's.
    """
    folder = Path(path)
    target = folder / CHECKPOINT_FILE
    if not (target.exists() or target.is_symlink()):  # a FIFO or device here is refused below, unread
        if (folder / LEGACY_FILE).exists():
            raise CheckpointError(
                f"{folder / LEGACY_FILE} is a pickle checkpoint (from an older hvae, or not from hvae); "
                "hvae never unpickles files from a run folder, so this run cannot be resumed: run its "
                "scenario again"
            )
        return None
    where = str(target)
    try:
        meta = json.loads(read_regular(target, "checkpoint", MAX_MANIFEST_BYTES).decode("utf-8"))
    except UnsafeFile as error:
        raise CheckpointError(str(error)) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{where}: not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not an hvae checkpoint")
    if meta.get("version") not in _READABLE_VERSIONS:
        raise CheckpointError(
            f"{where}: checkpoint version {one_line(repr(meta.get('version')), 40)}, this hvae reads version {FORMAT_VERSION}"
        )
    problem = _manifest_problem(meta)
    if problem:
        raise CheckpointError(f"{where}: {problem}")
    arrays_info = meta.pop("arrays")
    arrays_file = folder / arrays_info["file"]
    try:
        data = read_regular(arrays_file, "checkpoint arrays file", MAX_ARRAYS_BYTES)
    except UnsafeFile as error:
        raise CheckpointError(f"{where}: {error}") from None
    except OSError as error:
        raise CheckpointError(f"{where}: its arrays file {arrays_info['file']} cannot be read ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != arrays_info["sha256"]:
        raise CheckpointError(f"{where}: its arrays file {arrays_info['file']} was changed or damaged (checksum differs)")
    problem = _npz_problem(data)
    if problem:
        raise CheckpointError(f"{where}: its arrays file {arrays_info['file']} {problem}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{where}: its arrays file cannot be read ({type(error).__name__}: {one_line(error)})") from None
    if sorted(arrays) != sorted(arrays_info["keys"]):
        raise CheckpointError(f"{where}: its arrays file holds other arrays than the manifest lists")
    return Checkpoint(meta, arrays)


def _npz_problem(data: bytes) -> str | None:
    """Why the arrays archive cannot be loaded safely, judged from its headers alone (None: fine).

    ``numpy.savez`` stores every array uncompressed, as a ``.npy`` header followed by exactly
    ``shape × itemsize`` bytes. Each member is checked to be stored that way, with a plain dtype,
    before a single array is allocated — so a small file that declares a huge array is refused
    instead of allocating what it declares.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                return f"holds {len(members)} arrays, more than {MAX_ARRAYS}"
            for info in members:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                    return f"member {one_line(info.filename, 60)!r} is not stored as numpy.savez stores it"
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        return f"member {one_line(info.filename, 60)!r} has npy version {version}"
                    header = member.tell()
                if dtype.hasobject:
                    return f"member {one_line(info.filename, 60)!r} holds Python objects"
                declared = dtype.itemsize
                for size in shape:
                    declared *= int(size)
                if header + declared != info.file_size:
                    return (
                        f"member {one_line(info.filename, 60)!r} declares {declared:,} bytes of data but holds "
                        f"{max(info.file_size - header, 0):,}"
                    )
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, TypeError) as error:
        return f"is not a numpy archive ({type(error).__name__}: {one_line(error)})"
    return None


#: A checkpoint at round R keeps the rows stamped ``round < R + offset``: value changes carry the
#: round count after the round that caused them, every other table the round being played.
_ROUND_STAMP_OFFSET = {"value_changes": 1}
#: Tables with rows for every round played: their kept rows must cover rounds 0 .. R-1 exactly.
_EVERY_ROUND = ("rounds",)


def check_against_folder(state: Checkpoint, store: RunStore, rounds_planned: int, tables: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose figures do not match the run folder's files (nothing is changed).

    The round must not pass the rounds planned; each table's recorded row count must be exactly
    the rows the folder holds up to the checkpoint's round (a count cut down by hand would lose
    rows, one pushed up would keep rows of rounds to be replayed); the transcript length must not
    pass the file's size and must end a line.

    Raises:
        CheckpointError: the first figure that does not match, in one line.
    """
    where = store.path / CHECKPOINT_FILE
    played = state.round
    if played > rounds_planned:
        raise CheckpointError(f"{where}: round {played} is beyond the {rounds_planned} rounds the scenario plans")
    unknown = sorted(set(state.rows_written) - set(tables))
    if unknown:
        raise CheckpointError(f"{where}: rows_written names tables hvae does not write ({one_line(', '.join(unknown), 80)})")
    for name in tables:
        keep = state.rows_written.get(name, 0)
        rounds = store.round_column(name)
        if rounds is None:
            if keep:
                raise CheckpointError(f"{where}: rows_written.{name} is {keep:,}, but the folder has no {name} rows")
            continue
        limit = played + _ROUND_STAMP_OFFSET.get(name, 0)
        expected = int(np.count_nonzero(rounds < limit))
        if keep != expected or not bool(np.all(rounds[:keep] < limit)):
            raise CheckpointError(
                f"{where}: rows_written.{name} is {keep:,}, but the folder's {name} table has {expected:,} rows "
                f"up to round {played}; the checkpoint or the table was changed by hand"
            )
        if name in _EVERY_ROUND and np.unique(rounds[:keep]).size != played:
            raise CheckpointError(
                f"{where}: the checkpoint is at round {played}, but the folder's {name} table has "
                f"{np.unique(rounds[:keep]).size} rounds; the checkpoint or the table was changed by hand"
            )
    transcript_bytes = state.extra.get("transcript_bytes", 0)
    if not isinstance(transcript_bytes, int) or isinstance(transcript_bytes, bool) or transcript_bytes < 0:
        raise CheckpointError(f"{where}: transcript_bytes must be a count")
    size = store.file_size("transcripts.jsonl")
    if transcript_bytes > size:
        raise CheckpointError(
            f"{where}: transcript_bytes is {transcript_bytes:,}, but transcripts.jsonl has {size:,} bytes"
        )
    if transcript_bytes and store.byte_at("transcripts.jsonl", transcript_bytes - 1) != b"\n":
        raise CheckpointError(f"{where}: transcript_bytes ({transcript_bytes:,}) does not end a line of transcripts.jsonl")


_READABLE_VERSIONS = (2, FORMAT_VERSION)
_MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "round": int, "n_agents": int, "history_length": int, "streams": dict,
    "decider_rngs": dict, "mesa_rng": dict, "mesa_random": list, "log_totals": dict, "deciders": dict,
    "rows_written": dict, "extra": dict, "arrays": dict,
}


def _manifest_problem(meta: dict[str, Any]) -> str | None:
    versioned = {"recent_menus": list} if meta["version"] == 2 else {"dynamics": dict}
    for key, kind in {**_MANIFEST_TYPES, **versioned}.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            return f"{key} is missing or has the wrong type"
    if not isinstance(meta.get("backend_health", {}), dict):
        return "backend_health has the wrong type"
    if meta["round"] < 0:
        return "round is negative"
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in meta["log_totals"].values()):
        return "log_totals must be counts"
    if not all(isinstance(v, int) and v >= 0 for v in meta["rows_written"].values()):
        return "rows_written must be counts"
    arrays = meta["arrays"]
    name = arrays.get("file")
    if not (isinstance(name, str) and name.startswith(_ARRAYS_PREFIX) and name.endswith(".npz") and Path(name).name == name):
        return "its arrays file name is not a checkpoint file in the run folder"
    if not isinstance(arrays.get("sha256"), str) or not isinstance(arrays.get("keys"), list):
        return "its arrays entry is incomplete"
    return None
