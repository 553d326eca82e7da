"""The scenario schema: what a YAML scenario file may say, validated by pydantic.

A scenario is data: who is in the population (groups with a size, a value and a decider), where
they live (the network), who meets whom (matching), what they choose from (menus), how much they
remember, and how long it runs. Example::

    name: oracle_population
    seed: 7
    rounds: 24
    population:
      - {name: altruists, count: 8, value: altruistic, decider: oracle}
      - {name: competitors, share: 0.25, value: -45, decider: {kind: oracle, beta: 0.5}}
    size: 32                      # needed when any group gives a share instead of a count
    network: {kind: watts_strogatz, k: 4, p: 0.1}
    matching: random              # or all_edges
    menus: {kind: slider}         # or ring, dictator, custom, donation, prisoners_dilemma, public_goods
                                  # (the last four: hvae.scenarios.game_menus)
    history: {length: 5}

Every model forbids unknown keys, so a typo is an error with its path, not a silent default. Sizes,
amounts and seeds are bounded by :mod:`hvae.agents.limits`, so a hostile file is refused before
anything is allocated.

The ``menus``, ``decider`` and ``dynamics`` sections are unions built from the plug-in registries
(:mod:`hvae.agents.plugins`): a game, decider or rule registered later (``register_game``, an entry
point) is accepted from then on — the union is rebuilt after every registration.
:mod:`hvae.scenarios.loader` reads files, applies ``--set`` overrides and turns validation errors
into one-line messages with the file's line number.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union, get_args

from pydantic.fields import FieldInfo
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator, model_validator

import hvae.agents.deciders  # noqa: F401 - registers the shipped deciders' configs
import hvae.agents.surrogate  # noqa: F401 - registers the surrogate decider (kind: surrogate)
from hvae.agents.games import DictatorMenus, RingMenus, SliderMenus
from hvae.agents.llm.backends import DEFAULT_BACKEND_NAME, BackendConfig
from hvae.agents.limits import MAX_AGENTS, MAX_EDGES, MAX_ROUNDS, MAX_SEED, network_edges
from hvae.agents.llm.config import CommunicationConfig
from hvae.agents.llm.health import DEFAULT_MIN_VALID_SHARE
from hvae.agents.plugins import DECIDERS, GAMES, RULES, Registry
from hvae.agents.values import ValueSpec, parse_value

__all__ = ["DictatorMenus", "RingMenus", "SliderMenus"]  # (and every class defined below)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def registry_union(registry: Registry) -> Any:
    """The discriminated union of every config class registered in ``registry``."""
    configs = tuple(registry.configs())
    members: Any = Union[configs]  # a union of the registered classes, known only at run time  # noqa: UP007
    return Annotated[members, Field(discriminator=registry.tag)]


#: ``decider:`` of a group: every registered decider's config (:data:`hvae.agents.plugins.DECIDERS`).
#: The unions are built at run time from the registries; a static checker sees ``Any`` (any registered
#: config) for deciders and games, and the rules' common base class.
if TYPE_CHECKING:
    DeciderConfig: TypeAlias = Any
else:
    DeciderConfig = registry_union(DECIDERS)


class Group(_Model):
    """One population group: how many agents, which value, which decider."""

    model_config = ConfigDict(extra="forbid", ignored_types=(cached_property,))

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    count: int | None = Field(default=None, gt=0, le=MAX_AGENTS)
    share: float | None = Field(default=None, gt=0, le=1)
    value: Any
    decider: DeciderConfig

    @field_validator("value")
    @classmethod
    def _valid_value(cls, value: Any) -> Any:
        parse_value(value)
        return value

    @field_validator("decider", mode="before")
    @classmethod
    def _decider_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _count_or_share(self) -> Group:
        if (self.count is None) == (self.share is None):
            raise ValueError(f"group {self.name!r} needs exactly one of count or share")
        return self

    @cached_property
    def value_spec(self) -> ValueSpec:
        return parse_value(self.value)


class _Network(_Model):
    pass


class CompleteNetwork(_Network):
    kind: Literal["complete"]


#: How a sparse network is built: ``networkx`` (the graph Mesa's space wraps, built at start) or
#: ``arrays`` (edges generated straight into numpy arrays; Mesa's space and agent objects are built
#: only when first asked for — the path for a million agents, see :mod:`hvae.simulation.network`).
NetworkBuilder = Literal["networkx", "arrays"]


class RingLatticeNetwork(_Network):
    kind: Literal["ring_lattice"]
    k: int = Field(default=4, le=MAX_AGENTS)
    builder: NetworkBuilder = "networkx"


class WattsStrogatzNetwork(_Network):
    kind: Literal["watts_strogatz"]
    k: int = Field(default=4, le=MAX_AGENTS)
    p: float = Field(default=0.1, ge=0, le=1)
    builder: NetworkBuilder = "networkx"


class BarabasiAlbertNetwork(_Network):
    kind: Literal["barabasi_albert"]
    m: int = Field(default=2, ge=1, le=MAX_AGENTS)


class ErdosRenyiNetwork(_Network):
    kind: Literal["erdos_renyi"]
    p: float = Field(gt=0, le=1)


class GridNetwork(_Network):
    kind: Literal["grid"]
    rows: int = Field(gt=0, le=MAX_AGENTS)
    cols: int = Field(gt=0, le=MAX_AGENTS)
    periodic: bool = False


class FileNetwork(_Network):
    kind: Literal["file"]
    path: str  # relative paths are resolved against the scenario file's folder


NetworkConfig = Annotated[
    Union[
        CompleteNetwork,
        RingLatticeNetwork,
        WattsStrogatzNetwork,
        BarabasiAlbertNetwork,
        ErdosRenyiNetwork,
        GridNetwork,
        FileNetwork,
    ],
    Field(discriminator="kind"),
]


#: ``menus:``: every registered game's config (:data:`hvae.agents.plugins.GAMES`; the shipped ones
#: are in :mod:`hvae.agents.games`).
if TYPE_CHECKING:
    MenuConfig: TypeAlias = Any
else:
    MenuConfig = registry_union(GAMES)


class HistoryConfig(_Model):
    """How many recent games each agent remembers (what partners gave it)."""

    length: int = Field(default=5, ge=0, le=1000)


class OutputConfig(_Model):
    """Run-folder writing: rows are flushed to disk every ``flush_every`` rounds, and the model is
    checkpointed every ``checkpoint_every`` rounds (default: at every flush; rows are flushed
    whenever a checkpoint is taken)."""

    flush_every: int = Field(default=1, ge=1, le=MAX_ROUNDS)
    checkpoint_every: int | None = Field(default=None, ge=1, le=MAX_ROUNDS)


class RecordsConfig(_Model):
    """What a run keeps of its decisions (``records:``). ``full`` (default): one row per decision.
    ``sample``: the rows of ``sample_agents`` agents drawn once from the seed (all their decisions),
    so per-agent figures (value rationality, revealed angle, first-position share) are estimated
    from that sample; ``rounds.parquet`` (value shares, payoffs, Gini) and ``choice_counts.parquet``
    (decisions per round, group, menu, option, position shown and validity) still count every
    decision. A million agents for 100 rounds make 10^8 decisions: ~10 GB as rows."""

    decisions: Literal["full", "sample"] = "full"
    sample_agents: int = Field(default=10_000, ge=1, le=MAX_AGENTS)


#: Default selection strength of ``imitation`` and ``moran``, per payoff range of one game (see
#: :mod:`hvae.simulation.dynamics`), and default step of ``influence``.
DEFAULT_SELECTION_STRENGTH = 5.0
DEFAULT_INFLUENCE_STRENGTH = 1.0


class DynamicsConfig(BaseModel):
    """Base of every rule's ``dynamics:`` section (see :mod:`hvae.simulation.dynamics`): how often
    the rule runs (``every`` rounds) and how strongly. Each rule has its own subclass with
    ``rule: Literal[<rule>]``, registered in :data:`hvae.agents.plugins.RULES`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    every: int = Field(default=6, ge=1, le=MAX_ROUNDS)
    strength: float = Field(default=DEFAULT_SELECTION_STRENGTH, ge=0, le=1e6)


class NoDynamicsConfig(DynamicsConfig):
    """``none`` (the default): values never change."""

    rule: Literal["none"] = "none"


class SelectionConfig(DynamicsConfig):
    """A rule that selects on payoff: ``fitness`` is measured since the last update."""

    fitness: Literal["payoff_per_game", "total_payoff"] = "payoff_per_game"


class ImitationConfig(SelectionConfig):
    """``imitation``: pairwise comparison with a random neighbour (Fermi rule)."""

    rule: Literal["imitation"]


class MoranConfig(SelectionConfig):
    """``moran``: death–birth on the graph; ``events`` deaths per update (default: the population size)."""

    rule: Literal["moran"]
    events: int | None = Field(default=None, ge=1, le=MAX_AGENTS)


class InfluenceConfig(DynamicsConfig):
    """``influence``: move a fraction ``strength`` toward the neighbours' mean revealed angle."""

    rule: Literal["influence"]
    strength: float = Field(default=DEFAULT_INFLUENCE_STRENGTH, ge=0, le=1e6)


for _rule_config in (NoDynamicsConfig, ImitationConfig, MoranConfig, InfluenceConfig):
    RULES.add_config(_rule_config)

#: Keys of the single ``dynamics:`` section of hvae 0.1, which took them for every rule; a shipped
#: rule that has no use for one still accepts it (and ignores it), so old scenario files and run
#: folders keep loading.
_LEGACY_DYNAMICS_KEYS = ("strength", "fitness", "events")
_SHIPPED_RULES = ("none", "imitation", "moran", "influence")


def _dynamics_section(data: Any) -> Any:
    """``rule`` defaults to ``none``; a ``strength`` of null means the rule's default; legacy keys a
    shipped rule does not use are dropped."""
    if not isinstance(data, dict):
        return data
    data = {"rule": "none", **data}
    if data.get("strength", 0) is None:
        del data["strength"]
    entry = RULES.get(data["rule"]) if isinstance(data["rule"], str) else None
    if entry is not None and data["rule"] in _SHIPPED_RULES:
        fields = entry.config.model_fields
        data = {key: value for key, value in data.items() if key in fields or key not in _LEGACY_DYNAMICS_KEYS}
    return data


#: ``dynamics:``: every registered rule's config (:data:`hvae.agents.plugins.RULES`).
if TYPE_CHECKING:
    RuleConfig: TypeAlias = DynamicsConfig
else:
    RuleConfig = Annotated[registry_union(RULES), BeforeValidator(_dynamics_section)]


def dynamics_config(**data: Any) -> DynamicsConfig:
    """A validated ``dynamics:`` section, e.g. ``dynamics_config(rule="moran", strength=2)``."""
    return TypeAdapter(RuleConfig).validate_python(data)


class CacheConfig(_Model):
    """The LLM response cache: on by default; ``path`` defaults to ``$HVAE_CACHE_DIR`` or ~/.cache/hvae."""

    enabled: bool = True
    path: str | None = None


class BackendErrorsConfig(_Model):
    """What a run does when an LLM backend fails (see :mod:`hvae.agents.llm.health`): by default it
    stops as ``failed`` when a backend cannot be reached or more than ``max_error_rate`` of its last
    ``window`` calls failed; ``keep_going: true`` (or ``hvae run --keep-going``) goes on with
    fallbacks instead and reports the error counts. A reply with nothing in it counts as a failed call;
    a run that finishes with fewer than ``min_valid_share`` of its LLM decisions valid is marked
    ``complete_with_warnings`` with a warning line."""

    keep_going: bool = False
    window: int = Field(default=20, ge=1, le=100_000)
    max_error_rate: float = Field(default=0.5, ge=0, le=1)
    min_valid_share: float = Field(default=DEFAULT_MIN_VALID_SHARE, ge=0, le=1)


def _one_path_component(name: str) -> str:
    if set(name) == {"."}:
        raise ValueError(f"{name!r} names a folder ('.' or '..'), not a new one: use letters, digits or _.-")
    return name


#: A name that becomes one path component (a run or sweep folder): letters, digits and ``_.-``,
#: but not only dots (``.`` and ``..`` are the current and the parent folder).
SafeName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$"), AfterValidator(_one_path_component)]


class Scenario(_Model):
    """A whole experiment: population, world, menus, rounds and seed."""

    name: SafeName
    description: str = ""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    rounds: int = Field(gt=0, le=MAX_ROUNDS)
    size: int | None = Field(default=None, gt=0, le=MAX_AGENTS)
    population: list[Group] = Field(min_length=1)
    network: NetworkConfig = Field(default_factory=lambda: CompleteNetwork(kind="complete"))
    matching: Literal["random", "all_edges"] = "random"
    menus: MenuConfig = Field(default_factory=lambda: SliderMenus(kind="slider"))
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    dynamics: RuleConfig = Field(default_factory=NoDynamicsConfig)
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    backend_errors: BackendErrorsConfig = Field(default_factory=BackendErrorsConfig)
    communication: CommunicationConfig = Field(default_factory=CommunicationConfig)

    @model_validator(mode="after")
    def _backends_exist(self) -> Scenario:
        known = {DEFAULT_BACKEND_NAME, *self.backends}
        for group in self.population:
            if group.decider.kind == "llm" and group.decider.backend not in known:
                raise ValueError(
                    f"group {group.name!r} uses backend {group.decider.backend!r}, which is not defined "
                    f"(defined: {', '.join(sorted(known))})"
                )
        return self

    @model_validator(mode="after")
    def _talk_fits(self) -> Scenario:
        talk = self.communication
        if talk.compare and talk.turns == 0:
            raise ValueError("communication.compare needs communication.turns > 0 (the talk arm)")
        if talk.turns and self.matching != "random":
            raise ValueError("communication needs matching: random (one partner, one conversation per round)")
        if talk.turns and getattr(self.menus, "plays_every_neighbour", False):
            raise ValueError(
                f"communication is for two-player games: {self.menus.kind} is played with every neighbour at once"
            )
        return self

    @property
    def uses_llm(self) -> bool:
        return any(group.decider.kind == "llm" for group in self.population)

    @model_validator(mode="after")
    def _population_adds_up(self) -> Scenario:
        names = [g.name for g in self.population]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"group names must be unique, repeated: {', '.join(duplicates)}")
        if any(g.share is not None for g in self.population) and self.size is None:
            raise ValueError("groups given by share need the population 'size'")
        counts = self.group_counts()
        total = sum(counts.values())
        if self.size is not None and total != self.size:
            raise ValueError(f"group counts add up to {total}, but size is {self.size}")
        if total < 2:
            raise ValueError("a population needs at least 2 agents to play")
        if total > MAX_AGENTS:
            raise ValueError(f"the population has {total} agents, more than the limit of {MAX_AGENTS}")
        edges = network_edges(self.network, total)
        if edges > MAX_EDGES:
            raise ValueError(
                f"network {self.network.kind} over {total} agents has about {edges:.3g} edges, more than the limit of "
                f"{MAX_EDGES:,}: use a sparser network (ring_lattice, watts_strogatz, grid)"
            )
        return self

    def group_counts(self) -> dict[str, int]:
        """Agents per group. Shares are turned into counts by largest remainder."""
        fixed = {g.name: g.count for g in self.population if g.count is not None}
        shared = [g for g in self.population if g.share is not None]
        if not shared:
            return fixed
        remaining = (self.size or 0) - sum(fixed.values())
        total_share = sum(g.share for g in shared)  # type: ignore[misc]
        if remaining <= 0:
            raise ValueError(
                f"groups with a count already use {sum(fixed.values())} of size {self.size}; "
                "none is left for the groups given by share"
            )
        exact = {g.name: remaining * g.share / total_share for g in shared}  # type: ignore[operator]
        counts = {name: int(x) for name, x in exact.items()}
        leftover = remaining - sum(counts.values())
        for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[:leftover]:
            counts[name] += 1
        for name, count in counts.items():
            if count == 0:
                raise ValueError(f"group {name!r} gets 0 agents at size {self.size}")
        return {g.name: fixed.get(g.name, counts.get(g.name, 0)) for g in self.population}

    @property
    def n_agents(self) -> int:
        return sum(self.group_counts().values())


def union_tags() -> frozenset[str]:
    """Every tag a discriminated union of the schema can insert into an error's path: the kinds of
    networks, backends and every registered game, decider and rule (the loader drops them, they are
    no YAML keys)."""
    tags = {"float", "str", "int"}  # value: a number or a name
    for union in (NetworkConfig, BackendConfig):
        for member in get_args(get_args(union)[0]):  # Annotated[Union[...], Field(...)] -> the classes
            tags.update(member.model_fields["kind"].annotation.__args__)
    for registry in (DECIDERS, GAMES, RULES):
        tags.update(registry.kinds())
    return frozenset(tags)


def plugin_reference() -> str:
    """``docs/plugins.md``: every registered game, rule and decider with its keys (from the registries)."""
    header = (
        "# Games, value-dynamics rules and deciders\n\n"
        "Generated from the plug-in registries (`hvae.agents.plugins`) by\n"
        "`python -c \"from hvae.scenarios.schema import plugin_reference; print(plugin_reference(), end='')\"`;\n"
        "`tests/test_plugins.py` checks that this file matches. A kind you register appears in your own listing.\n"
    )
    return header + "".join("\n" + registry.reference() for registry in (GAMES, RULES, DECIDERS))


def _rebuild() -> None:
    """Rebuild the registry unions of :class:`Group` and :class:`Scenario` (after a registration)."""
    _set_field(Group, "decider", registry_union(DECIDERS))
    Group.model_rebuild(force=True)
    _set_field(Scenario, "menus", registry_union(GAMES))
    _set_field(Scenario, "dynamics", Annotated[registry_union(RULES), BeforeValidator(_dynamics_section)])
    Scenario.model_rebuild(force=True)


def _set_field(model: type[BaseModel], name: str, annotation: Any) -> None:
    old = model.model_fields[name]
    new = FieldInfo.merge_field_infos(FieldInfo.from_annotation(annotation), default=old.default, default_factory=old.default_factory)
    model.model_fields[name] = new


for _registry in (DECIDERS, GAMES, RULES):
    _registry.on_change(_rebuild)
# plug-ins other packages declare (entry points): registered now, so that scenarios naming them validate
for _registry in (DECIDERS, GAMES, RULES):
    _registry.load_entry_points()
