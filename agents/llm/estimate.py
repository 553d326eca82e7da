"""What a run will cost before it runs: LLM calls, prompt and completion tokens, and money.

``hvae run SCENARIO --dry-run`` builds the population and the prompts of the first round exactly
as the run would (value prompt, role instruction, goal prompt, the first decision prompt with the
first menu), without calling a model, and counts as below; ``hvae evaluate … --dry-run`` does the
same for every model/value cell, one decision per questionnaire item (no history):

* **calls**: per LLM agent its setup calls (value description, and the goal unless
  ``goal_prompting: false``), then one decision per round — an upper bound on the deciding agents
  (every LLM agent with a partner), and without re-asks (their number depends on the model); with
  pre-play talk (``communication.turns``) each LLM agent speaks ``turns / 2`` messages a round
  (rounded up over the run), seeing on average ``(turns - 1) / 2`` earlier messages, and each
  decision prompt shows the pair's ``turns`` messages;
* **replies are not known before the run**, so each is counted twice: at the length its prompt
  asks for (the **expected** figures) and at its cap (the **at most** figures). The expectation
  is read from the wording, never fitted to a model: the value description is asked for "in two
  or three sentences" (:data:`DESCRIPTION_SENTENCES` = 2.5), the goal "with one sentence"
  (:data:`GOAL_SENTENCES` = 1), each sentence :data:`TOKENS_PER_SENTENCE` tokens (about 19
  English words at 0.75 words a token); a JSON decision is the reply format the prompt shows, with
  "a few words" of reason (:data:`JSON_DECISION_EXAMPLE`); a letter is one token; a talk message
  "one or two short sentences" (:data:`TALK_SENTENCES` = 1.5). Each is capped
  by its ``max_tokens``. A decision's prompt holds the agent's setup conversation, so the two
  setup replies (the goal twice: it is restated in every decision) enter every decision prompt;
  later rounds add the history lines (``history.length`` entries at most), from a filled example;
* **cache**: calls the response cache will answer cost nothing and are counted apart, by kind
  (``value``, ``goal``, ``decision``, ``reask``, ``talk``). They are found by replaying the run
  (or evaluation) against the cache alone before it starts (:class:`CacheTally`, driven by
  :mod:`hvae.cli.dry_run`): a call is answered by the cache there exactly when its request is
  stored. A run is replayed round by round until the first round with a call the cache does not
  hold (after it, histories depend on replies not known yet, so later calls are counted as
  paid: an upper bound); evaluation items have no history, so each is replayed.

How tokens are counted (:func:`token_counter`): the **embedded** backend names its tokenizer (the
GGUF's vocabulary and chat template, loaded by llama-cpp with ``vocab_only``: exact for the text
given); other backends get an **estimate** of one token per 4 characters plus 4 per message, whose
error on English prompts is about ±15 % (OpenAI's own rule of thumb). Prices are per million
tokens (``--price-in``, ``--price-out``); the cost is given for the expected tokens and at most.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from hvae.agents.llm import prompts
from hvae.agents.llm.backends import BackendConfig, EmbeddedBackend
from hvae.agents.llm.chat_client import CHARS_PER_TOKEN

ESTIMATE_ERROR = 0.15  # stated relative error of the character estimate
TOKENS_PER_MESSAGE = 4  # role and separators of one chat message (estimate)
TOKENS_PER_SENTENCE = 25  # an English sentence of about 19 words, at 0.75 words a token
DESCRIPTION_SENTENCES = 2.5  # prompts.DESCRIBE_PROMPT asks for "two or three sentences"
GOAL_SENTENCES = 1.0  # prompts.goal_prompt asks to "Answer with one sentence."
TALK_SENTENCES = 1.5  # talk.talk_prompt asks for "One or two short sentences."
#: the reply format a JSON decision prompt shows (prompts.answer_instruction), "a few words" filled in
JSON_DECISION_EXAMPLE = '{"choice": "A", "reason": "best for my goal"}'
#: kinds of calls, as the client's call settings name their phase
CALL_KINDS = ("value", "goal", "decision", "reask", "talk")


class TokenCounter:
    """Counts the prompt tokens of a list of ``(role, content)`` messages."""

    method = "estimate"
    error: float | None = ESTIMATE_ERROR

    def count(self, messages: Sequence[tuple[str, str]]) -> int:
        return sum(len(content) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE for _, content in messages)

    def text(self, text: str) -> int:
        """Tokens of a bare text (a reply), without message overhead."""
        return max(1, len(text) // CHARS_PER_TOKEN)

    def describe(self) -> str:
        return f"estimated: 1 token per {CHARS_PER_TOKEN} characters + {TOKENS_PER_MESSAGE} per message (about ±{self.error:.0%})"


class GgufTokenCounter(TokenCounter):
    """The embedded model's own tokenizer and chat template (exact for the given messages)."""

    method = "tokenizer"
    error = None

    def __init__(self, model_path: str) -> None:
        import llama_cpp

        from hvae.agents.llm.embedded_worker import chat_formatter

        self.path = model_path
        with _quiet_native_stderr():  # llama.cpp logs to fd 2 even with verbose=False
            self.llm = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
        self.formatter = chat_formatter(self.llm, model_path)
        self._memo: dict[tuple[tuple[str, str], ...], int] = {}

    def count(self, messages: Sequence[tuple[str, str]]) -> int:
        key = tuple(messages)  # agents with the same value send the same setup text: count it once
        if key not in self._memo:
            self._memo[key] = self._count(messages)
        return self._memo[key]

    def _count(self, messages: Sequence[tuple[str, str]]) -> int:
        chat: Any = [{"role": role, "content": content} for role, content in messages]  # llama-cpp's message TypedDicts
        formatted = self.formatter(messages=chat)
        return len(self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))

    def text(self, text: str) -> int:
        return max(1, len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)))

    def describe(self) -> str:
        from pathlib import Path

        return f"counted with the model's tokenizer and chat template ({Path(self.path).name})"


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def token_counter(config: BackendConfig) -> TokenCounter:
    """The tokenizer a backend names (the embedded GGUF), else the character estimate."""
    if isinstance(config, EmbeddedBackend):
        from hvae.agents.llm.backends import embedded_model_path

        try:
            return GgufTokenCounter(str(config.model_path or embedded_model_path()))
        except Exception:  # noqa: BLE001 - no llama-cpp, unreadable file: fall back to the estimate
            return TokenCounter()
    return TokenCounter()


def expected_reply(cap: int, sentences: float) -> int:
    """The tokens of a reply asked for in ``sentences`` sentences, at most its cap."""
    return min(cap, round(sentences * TOKENS_PER_SENTENCE))


#: one call's tokens: (prompt expected, completion expected, prompt at most, completion at most)
CallTokens = tuple[int, int, int, int]


class CacheMiss(Exception):
    """A call that the response cache does not hold, met while replaying against the cache alone (never sent)."""


@dataclass
class CacheTally:
    """What a replay against the response cache alone met (see the module docstring).

    :class:`~hvae.agents.llm.client.HvaeClient` reports every call of the replay here
    (``pool.answer_from_cache_only(tally)``): ``hits`` are ``(backend, group, agent, phase,
    round, tokens in, tokens out)``, ``misses`` ``(backend, group, agent, phase, round)``.
    """

    hits: list[tuple[str, str, int, str, int | None, int, int]] = field(default_factory=list)
    misses: list[tuple[str, str, int, str, int | None]] = field(default_factory=list)

    def answered(self, backend: str, settings: Any, cached: dict[str, Any]) -> None:
        group, agent, phase, round_index = _call_of(settings)
        self.hits.append((backend, group, agent, phase, round_index, int(cached.get("tokens_in") or 0),
                          int(cached.get("tokens_out") or 0)))

    def missed(self, backend: str, settings: Any) -> None:
        self.misses.append((backend, *_call_of(settings)))

    def exact_hits(self) -> list[tuple[str, str, int, str, int | None, int, int]]:
        """The hits a real run will have too: a decision after a talk turn the cache lacks is not one.

        (That turn's reply changes the conversation the decision prompt shows.)
        """
        talk_missed = {(b, g, a, r) for b, g, a, phase, r in self.misses if phase == "talk"}
        return [hit for hit in self.hits
                if hit[3] not in ("decision", "reask") or (hit[0], hit[1], hit[2], hit[4]) not in talk_missed]


def _call_of(settings: Any) -> tuple[str, int, str, int | None]:
    if settings is None:
        return "", -1, "other", None
    return settings.group, settings.agent_id, settings.phase, settings.round


@dataclass
class BackendEstimate:
    """Calls and tokens one backend will get (see the module docstring).

    ``prompt_tokens`` and ``completion_tokens`` are expected figures, the ``*_max`` ones count the
    unknown replies at their caps; calls the cache will answer are left out of both and counted
    in ``cached`` (by kind) and ``cached_*_tokens`` (what the cache holds for them).
    """

    backend: str
    tokens_counted: str
    error: float | None
    agents: int = 0
    setup_calls: int = 0
    decision_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_max: int = 0
    completion_tokens_max: int = 0
    first_round_prompt_tokens: int = 0
    talk_calls: int = 0
    cached: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALL_KINDS, 0))
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    #: each agent's calls as estimated: (group, agent, kind, round key) -> tokens (not written out)
    per_call: dict[tuple[str, int, str, int], CallTokens] = field(default_factory=dict, repr=False)
    last_round_key: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def calls(self) -> int:
        return self.setup_calls + self.decision_calls + self.talk_calls

    @property
    def cached_calls(self) -> int:
        return sum(self.cached.values())

    @property
    def setup_calls_cached(self) -> int:
        return self.cached["value"] + self.cached["goal"]

    def add(self, key: tuple[str, int, str, int], tokens: CallTokens, count: int = 1) -> None:
        """Count ``count`` calls of ``key``'s kind, each with ``tokens``."""
        self.per_call[key] = tokens
        self._calls(key[2], count)
        self._tokens(tokens, count)

    def _calls(self, kind: str, count: int) -> None:
        if kind == "decision":
            self.decision_calls += count
        elif kind == "talk":
            self.talk_calls += count
        else:
            self.setup_calls += count

    def _tokens(self, tokens: CallTokens, count: int) -> None:
        self.prompt_tokens += tokens[0] * count
        self.completion_tokens += tokens[1] * count
        self.prompt_tokens_max += tokens[2] * count
        self.completion_tokens_max += tokens[3] * count

    def answered_by_cache(self, group: str, agent: int, phase: str, round_index: int | None, tokens_in: int, tokens_out: int) -> None:
        """One call the cache will answer: counted apart, and out of the paid calls where they hold it.

        (Re-asks are not in the paid calls, so they are only counted apart.)
        """
        self.cached[phase if phase in self.cached else "decision"] += 1
        self.cached_prompt_tokens += tokens_in
        self.cached_completion_tokens += tokens_out
        last = self.last_round_key.get(group, 0)
        key = (group, agent, phase, 0 if phase in ("value", "goal", "talk") else min(round_index or 0, last))
        tokens = self.per_call.get(key)
        if tokens is None or phase not in ("value", "goal", "decision", "talk"):
            return
        self._calls(phase, -1)
        self._tokens(tokens, -1)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("per_call", "last_round_key")}
        return data | {"calls": self.calls, "cached_calls": self.cached_calls}


@dataclass
class RunEstimate:
    """The whole run: one :class:`BackendEstimate` per backend used, and the price if given."""

    rounds: int
    backends: list[BackendEstimate] = field(default_factory=list)
    price_in: float | None = None
    price_out: float | None = None
    unit: str = "rounds"  #: what ``rounds`` counts ("questionnaire items" for ``hvae evaluate``)
    cache_replayed: str = "no cache"  #: how far the replay against the cache went (module docstring)

    def _total(self, name: str) -> int:
        return sum(getattr(b, name) for b in self.backends)

    calls = property(lambda self: self._total("calls"), doc="Calls to pay, all backends.")
    cached_calls = property(lambda self: self._total("cached_calls"), doc="Calls the cache will answer.")
    prompt_tokens = property(lambda self: self._total("prompt_tokens"), doc="Expected prompt tokens.")
    completion_tokens = property(lambda self: self._total("completion_tokens"), doc="Expected completion tokens.")
    prompt_tokens_max = property(lambda self: self._total("prompt_tokens_max"), doc="Prompt tokens at most.")
    completion_tokens_max = property(lambda self: self._total("completion_tokens_max"), doc="Completion tokens at most.")

    def cost(self, at_most: bool = False) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        prompt, completion = ((self.prompt_tokens_max, self.completion_tokens_max) if at_most
                              else (self.prompt_tokens, self.completion_tokens))
        return (prompt * (self.price_in or 0.0) + completion * (self.price_out or 0.0)) / 1e6

    def apply_cache(self, tally: CacheTally, replayed: str) -> None:
        """Count the calls a replay against the cache found answered (see :class:`CacheTally`)."""
        self.cache_replayed = replayed
        by_name = {b.backend: b for b in self.backends}
        for backend, group, agent, phase, round_index, tokens_in, tokens_out in tally.exact_hits():
            if backend in by_name:
                by_name[backend].answered_by_cache(group, agent, phase, round_index, tokens_in, tokens_out)

    def to_json(self) -> dict[str, Any]:
        cached = Counter[str]()
        for b in self.backends:
            cached.update(b.cached)
        return {
            "rounds": self.rounds, "unit": self.unit, "calls": self.calls, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "prompt_tokens_at_most": self.prompt_tokens_max,
            "completion_tokens_at_most": self.completion_tokens_max, "cost": self.cost(),
            "cost_at_most": self.cost(at_most=True), "price_in": self.price_in, "price_out": self.price_out,
            "cached_calls": {kind: cached[kind] for kind in CALL_KINDS}, "cache_replayed": self.cache_replayed,
            "backends": [b.to_json() for b in self.backends],
        }

    def lines(self) -> list[str]:
        out = [f"dry run: {self.rounds} {self.unit}; nothing was sent to a model"]
        for b in self.backends:
            cached = ", ".join(f"{kind} {b.cached[kind]:,}" for kind in CALL_KINDS)
            talk = f", {b.talk_calls:,} talk messages" if b.talk_calls else ""
            out += [
                f"  backend {b.backend}: {b.agents} LLM agents, {b.calls:,} calls to pay ({b.setup_calls:,} setup, "
                f"{b.decision_calls:,} decisions{talk}); answered by the cache, not paid: {b.cached_calls:,} ({cached})",
                f"    expected {b.prompt_tokens:,} prompt + {b.completion_tokens:,} completion tokens "
                f"(at most {b.prompt_tokens_max:,} + {b.completion_tokens_max:,}); first {self.unit.removesuffix('s')} "
                f"{b.first_round_prompt_tokens:,} prompt tokens; tokens {b.tokens_counted}",
            ]
        out.append(f"  total: {self.calls:,} calls, {self.prompt_tokens:,} prompt and {self.completion_tokens:,} completion "
                   f"tokens expected (at most {self.prompt_tokens_max:,} and {self.completion_tokens_max:,})")
        cost, most = self.cost(), self.cost(at_most=True)
        if cost is not None and most is not None:
            out.append(f"  cost at {self.price_in or 0:g} / {self.price_out or 0:g} per million tokens in / out: "
                       f"{cost:,.4f} expected, at most {most:,.4f}")
        out.append(f"  (re-asks are not counted; replies at the length their prompts ask for, "
                   f"at most at their caps; cache: {self.cache_replayed})")
        return out


def _history_example(length: int) -> list[dict[str, float]]:
    return [{"round": k, "given": 50.0, "kept": 50.0} for k in range(length)]


#: one kind of decision an agent will make: (round or item index, options shown, history length, how many)
Decision = tuple[int, list[tuple[float, float]], int, int]


def run_decisions(options: list[tuple[float, float]], rounds: int, history_length: int) -> list[Decision]:
    """A run's decisions: the first round (no history) and ``rounds - 1`` later ones with a full history."""
    return [(0, options, 0, 1)] + ([(1, options, history_length, rounds - 1)] if rounds > 1 else [])


def estimate_decider(decider: Any, estimate: BackendEstimate, counter: TokenCounter, decisions: list[Decision]) -> None:
    """Add one LLM decider's agents to ``estimate`` (the prompts as :class:`LLMDecider` builds them).

    ``decisions`` lists each agent's decisions (:func:`run_decisions` for a run; one per item for
    a questionnaire); the first of them is the one counted as ``first_round_prompt_tokens``.
    """
    config = decider.config
    backend = decider.backend_config
    setup_cap, goal_cap = config.setup_max_tokens, config.goal_max_tokens
    mode = backend.structured
    structured = config.structured and mode != "none"
    json_reply = structured and mode != "letter"
    decision_cap = 1 if structured and mode == "letter" else backend.max_tokens
    decision_reply = min(decision_cap, counter.text(JSON_DECISION_EXAMPLE) if json_reply else 1)
    # the setup replies are unknown: counted as empty messages plus their expected length (and
    # at most their caps); the agent's own goal also reappears in every decision prompt, so a
    # decision adds the goal once more; without goal prompting the fixed goal is known text
    description = expected_reply(setup_cap, DESCRIPTION_SENTENCES)
    goal_reply = expected_reply(goal_cap, GOAL_SENTENCES)
    replies = (description + 2 * goal_reply, setup_cap + 2 * goal_cap) if config.goal_prompting else (description, setup_cap)
    goal = "x" if config.goal_prompting else prompts.FIXED_GOAL  # "x": a goal of ~0 tokens (empty means the fixed goal)
    decision_prompts = [
        (index, prompts.decision_prompt(index, options, goal, _history_example(length), json_reply), count)
        for index, options, length, count in decisions
    ]
    group = decider.group
    estimate.last_round_key[group] = max(index for index, _, _ in decision_prompts)
    talk = decider.talk_config if decider.game is None else None  # n-player games have no pairs, so no talk
    turns = talk.turns if talk is not None else 0
    if talk is not None and turns:
        from hvae.agents.llm import talk as talking

        message = (expected_reply(talk.max_tokens, TALK_SENTENCES), talk.max_tokens)
        line = counter.text('Your partner: ""')  # who said it, and the quotes, of one message line
        said = talking.decision_conversation_part((talking.Utterance(-1, 0, "x"),), 0)  # the header around the messages
        shown = [(m, message[m] + line) for m in (0, 1)]  # per message shown: (expected, at most) tokens
        conversation = [counter.text(said) + turns * tokens for _, tokens in shown]
        talk_calls = math.ceil(turns * sum(count for _, _, count in decision_prompts) / 2)
        context = talking.TalkContext(0, -1, decisions[0][1], turns, "x" * 60 if talk.visible_values else None)
    for agent_id, setup in sorted(decider.setups.items()):
        estimate.agents += 1
        system = decider._system_message(agent_id)
        head = [("system", system)] if system is not None else []
        first_turn = prompts.DESCRIBE_PROMPT if decider.placement == "system" else prompts.value_prompt(setup.theta, decider.value_name, decider.wording)
        value_call = [*head, ("user", first_turn)]
        sent = counter.count(value_call)
        estimate.add((group, agent_id, "value", 0), (sent, description, sent, setup_cap))
        if config.goal_prompting:
            goal_call = [*value_call, ("assistant", ""), ("user", prompts.ROLE_INSTRUCTION),
                         ("user", prompts.goal_prompt(decider.task_text))]
            sent = counter.count(goal_call)
            estimate.add((group, agent_id, "goal", 0), (sent + description, goal_reply, sent + setup_cap, goal_cap))
            prefix = [*goal_call, ("assistant", "")]
        else:  # the role instruction, task and fixed goal in one user turn (no call)
            fixed = f"{prompts.ROLE_INSTRUCTION}\n\n{decider.task_text} Your goal in this study: {prompts.FIXED_GOAL}"
            prefix = [*value_call, ("assistant", ""), ("user", fixed)]
        for k, (index, prompt, count) in enumerate(decision_prompts):
            sent = counter.count([*prefix, ("user", prompt)])
            if k == 0:
                estimate.first_round_prompt_tokens += sent + replies[0]
            tokens = (sent + replies[0], decision_reply, sent + replies[1], decision_cap)
            if turns:
                tokens = (tokens[0] + conversation[0], tokens[1], tokens[2] + conversation[1], tokens[3])
            estimate.add((group, agent_id, "decision", index), tokens, count)
        if talk is not None and turns:  # a speaker sees (turns - 1) / 2 earlier messages on average, turns - 1 at most
            sent = counter.count([*prefix, ("user", talking.talk_prompt(context, goal, (), agent_id))])
            tokens = (sent + replies[0] + round((turns - 1) / 2 * shown[0][1]), message[0],
                      sent + replies[1] + (turns - 1) * shown[1][1], message[1])
            estimate.add((group, agent_id, "talk", 0), tokens, talk_calls)
