"""What a run will cost before it runs: LLM calls, prompt and completion tokens, and money.

``hvae run SCENARIO --dry-run`` builds the population and the prompts of the first round exactly
as the run would (value prompt, role instruction, goal prompt, the first decision prompt with the
first menu), without calling a model, and counts as below; ``hvae evaluate … --dry-run`` does the
same for every model/value cell, one decision per questionnaire item (no history):

* **calls**: per LLM agent its setup calls (value description, and the goal unless
  ``goal_prompting: false``), then one decision per round — an upper bound on the deciding agents
  (every LLM agent with a partner), and without re-asks (their number depends on the model);
* **prompt tokens**: the messages each call sends; a decision's prompt holds the agent's setup
  conversation, whose two replies are not known before the run and are counted at their caps
  (``setup_max_tokens``, ``goal_max_tokens``; without goal prompting the fixed goal is known
  text), and later rounds add the history lines
  (``history.length`` entries at most), counted from a filled example;
* **completion tokens**: the cap of each call (an upper bound; a letter grammar gives 1);
* **cache**: value calls (the first setup call) whose exact request the response cache already
  holds are counted apart (they cost nothing); the goal and decision requests contain replies
  not known before the run, so they are counted as if the cache did not answer them (an upper
  bound: a repeated run or evaluation with the same seed costs less than its estimate).

How tokens are counted (:func:`token_counter`): the **embedded** backend names its tokenizer (the
GGUF's vocabulary and chat template, loaded by llama-cpp with ``vocab_only``: exact for the text
given); other backends get an **estimate** of one token per 4 characters plus 4 per message, whose
error on English prompts is about ±15 % (OpenAI's own rule of thumb). Prices are per million
tokens (``--price-in``, ``--price-out``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from hvae.agents.llm import prompts
from hvae.agents.llm.backends import BackendConfig, EmbeddedBackend
from hvae.agents.llm.chat_client import CHARS_PER_TOKEN

ESTIMATE_ERROR = 0.15  # stated relative error of the character estimate
TOKENS_PER_MESSAGE = 4  # role and separators of one chat message (estimate)


class TokenCounter:
    """Counts the prompt tokens of a list of ``(role, content)`` messages."""

    method = "estimate"
    error: float | None = ESTIMATE_ERROR

    def count(self, messages: Sequence[tuple[str, str]]) -> int:
        return sum(len(content) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE for _, content in messages)

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
        formatted = self.formatter(messages=[{"role": role, "content": content} for role, content in messages])
        return len(self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))

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


@dataclass
class BackendEstimate:
    """Calls and tokens one backend will get (see the module docstring)."""

    backend: str
    tokens_counted: str
    error: float | None
    agents: int = 0
    setup_calls: int = 0
    setup_calls_cached: int = 0
    decision_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    first_round_prompt_tokens: int = 0

    @property
    def calls(self) -> int:
        return self.setup_calls + self.decision_calls


@dataclass
class RunEstimate:
    """The whole run: one :class:`BackendEstimate` per backend used, and the price if given."""

    rounds: int
    backends: list[BackendEstimate] = field(default_factory=list)
    price_in: float | None = None
    price_out: float | None = None
    unit: str = "rounds"  #: what ``rounds`` counts ("questionnaire items" for ``hvae evaluate``)

    @property
    def calls(self) -> int:
        return sum(b.calls for b in self.backends)

    @property
    def prompt_tokens(self) -> int:
        return sum(b.prompt_tokens for b in self.backends)

    @property
    def completion_tokens(self) -> int:
        return sum(b.completion_tokens for b in self.backends)

    def cost(self) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (self.prompt_tokens * (self.price_in or 0.0) + self.completion_tokens * (self.price_out or 0.0)) / 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds, "unit": self.unit, "calls": self.calls, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "cost": self.cost(), "price_in": self.price_in,
            "price_out": self.price_out, "backends": [asdict(b) | {"calls": b.calls} for b in self.backends],
        }

    def lines(self) -> list[str]:
        out = [f"dry run: {self.rounds} {self.unit}; nothing was sent to a model"]
        for b in self.backends:
            out.append(
                f"  backend {b.backend}: {b.agents} LLM agents, {b.calls:,} calls ({b.setup_calls:,} setup, "
                f"{b.decision_calls:,} decisions; {b.setup_calls_cached:,} setup calls answered by the cache, not counted), "
                f"{b.prompt_tokens:,} prompt + {b.completion_tokens:,} completion tokens (at most; "
                f"first {self.unit.removesuffix('s')} {b.first_round_prompt_tokens:,} prompt tokens); tokens {b.tokens_counted}"
            )
        out.append(f"  total: {self.calls:,} calls, {self.prompt_tokens:,} prompt and {self.completion_tokens:,} completion tokens")
        cost = self.cost()
        if cost is not None:
            out.append(f"  cost at {self.price_in or 0:g} / {self.price_out or 0:g} per million tokens in / out: {cost:,.4f}")
        out.append("  (re-asks are not counted; setup replies and completions are counted at their caps)")
        return out


def _history_example(length: int) -> list[dict[str, float]]:
    return [{"round": k, "given": 50.0, "kept": 50.0} for k in range(length)]


#: one kind of decision an agent will make: (round or item index, options shown, history length, how many)
Decision = tuple[int, list[tuple[float, float]], int, int]


def run_decisions(options: list[tuple[float, float]], rounds: int, history_length: int) -> list[Decision]:
    """A run's decisions: the first round (no history) and ``rounds - 1`` later ones with a full history."""
    return [(0, options, 0, 1)] + ([(1, options, history_length, rounds - 1)] if rounds > 1 else [])


def estimate_decider(
    decider: Any, estimate: BackendEstimate, counter: TokenCounter, decisions: list[Decision], cache: Any = None,
) -> None:
    """Add one LLM decider's agents to ``estimate`` (the prompts as :class:`LLMDecider` builds them).

    ``decisions`` lists each agent's decisions (:func:`run_decisions` for a run; one per item for
    a questionnaire); the first of them is the one counted as ``first_round_prompt_tokens``.
    """
    from autogen_core.models import UserMessage

    from hvae.agents.llm.cache import request_key

    config = decider.config
    backend = decider.backend_config
    setup_cap, goal_cap = config.setup_max_tokens, config.goal_max_tokens
    mode = backend.structured
    structured = config.structured and mode != "none"
    json_reply = structured and mode != "letter"
    decision_cap = 1 if structured and mode == "letter" else backend.max_tokens
    # the setup replies are unknown: counted as empty messages plus their caps (the agent's own
    # goal also reappears in every decision prompt, so a decision adds the goal's cap once more;
    # without goal prompting the fixed goal is known text)
    replies = setup_cap + (2 * goal_cap if config.goal_prompting else 0)
    goal = "x" if config.goal_prompting else prompts.FIXED_GOAL  # "x": a goal of ~0 tokens (empty means the fixed goal)
    client = decider.pool.client(config.backend, -1) if cache is not None else None
    decision_prompts = [
        (prompts.decision_prompt(index, options, goal, _history_example(length), json_reply), count)
        for index, options, length, count in decisions
    ]
    for agent_id, setup in sorted(decider.setups.items()):
        estimate.agents += 1
        system = decider._system_message(agent_id)
        head = [("system", system)] if system is not None else []
        first_turn = prompts.DESCRIBE_PROMPT if decider.placement == "system" else prompts.value_prompt(setup.theta, decider.value_name, decider.wording)
        value_call = [*head, ("user", first_turn)]
        # (messages, tokens of unknown replies inside them, completion cap)
        calls: list[tuple[list[tuple[str, str]], int, int]] = [(value_call, 0, setup_cap)]
        if config.goal_prompting:
            goal_call = [*value_call, ("assistant", ""), ("user", prompts.ROLE_INSTRUCTION),
                         ("user", prompts.goal_prompt(decider.task_text))]
            calls.append((goal_call, setup_cap, goal_cap))
            prefix = [*goal_call, ("assistant", "")]
        else:  # the role instruction, task and fixed goal in one user turn (no call)
            fixed = f"{prompts.ROLE_INSTRUCTION}\n\n{decider.task_text} Your goal in this study: {prompts.FIXED_GOAL}"
            prefix = [*value_call, ("assistant", ""), ("user", fixed)]
        if client is not None and not head:  # the value call's request is known exactly: is it cached?
            settings = decider._settings(agent_id, None, "value", 0, setup_cap)
            cached = cache.get(request_key(client.describe([UserMessage(content=first_turn, source="user")], settings)))
            if cached is not None:
                estimate.setup_calls_cached += 1
                estimate.cached_prompt_tokens += counter.count(value_call)
                estimate.cached_completion_tokens += int(cached.get("tokens_out") or 0)
                calls = calls[1:]
        for messages, unknown, cap in calls:
            estimate.setup_calls += 1
            estimate.prompt_tokens += counter.count(messages) + unknown
            estimate.completion_tokens += cap
        for k, (prompt, count) in enumerate(decision_prompts):
            tokens = counter.count([*prefix, ("user", prompt)]) + replies
            if k == 0:
                estimate.first_round_prompt_tokens += tokens
            estimate.decision_calls += count
            estimate.prompt_tokens += tokens * count
            estimate.completion_tokens += decision_cap * count
