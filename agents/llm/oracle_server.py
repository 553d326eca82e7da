"""An OpenAI-compatible server whose "model" has values: the end-to-end test of the measurement.

The embedded SmolLM2 model is value-blind, so it cannot show that the LLM path — value prompting,
counterbalanced menus, reply parsing, decision VR, the revealed angle — recovers a value that is
really there. This server can: its model reads the assigned value and the menu **from the
conversation it is sent** (exactly what any model behind an ``openai`` backend sees) and answers
as a logit value-rational chooser::

    P(option i) ∝ exp(β · U_θ(sᵢ, oᵢ) + bias · [i shown first]),   U_θ(s, o) = cos θ · s + sin θ · o

with inverse temperature ``beta`` (1/coin; β = 0 is a uniform chooser), a logit bonus
``position_bias`` for the option shown first, and, with probability ``invalid_rate``, a reply that
names no option (hvae's parser rejects it). Because θ is read from the prompt text, the pipeline
has to carry the value through for the measurement to recover it; a broken counterbalancing or
parser shows up as a wrong angle, a wrong first-position share or a wrong invalid rate.

Start it with ``hvae serve-oracle --port 8765 [--beta B] [--position-bias P] [--invalid-rate R]
[--seed S]`` (it listens on 127.0.0.1 only) and point an ``openai`` backend at
``http://127.0.0.1:8765/v1`` with ``model: hvae-oracle`` (``scenarios/validity_demo.yaml``). In
Python: ``with OracleServer(OracleModel(beta=2.0)) as server: server.base_url``.

What it reads:

* **the value** — in the system messages and the first user message only (where hvae's pipeline
  states it; never its own replies, nor later turns, which in talk quote the partner): any of the
  category wordings the project ships (:data:`~hvae.agents.llm.prompts.CATEGORY_TEXT` and the
  paraphrases of :mod:`hvae.agents.llm.wordings`) or an angle wording (``angle 30° on the social
  value orientation ring``, whole degrees, as :func:`~hvae.agents.llm.prompts.value_wording`
  writes it). Two different values in one conversation, or none, is an error;
* **the menu** — the lettered ``A: 85, 85`` lines of the latest user message that has them (a
  re-ask after an unusable reply refers back to that menu). The first line shown is "first".

A **decision turn** is one whose latest user message shows a menu or is hvae's corrective re-ask,
or whose ``response_format`` asks for a ``choice``; it is answered with the letter, or with
``{"choice": "B", "reason": "..."}`` when a JSON ``response_format`` was requested. Every other
turn (the value description, the goal, a message to the partner in pre-play talk) is answered
by :func:`talk_reply`: a short plain sentence restating the value, or in talk the option it
intends to take. A request in which the server cannot find a value (or a
decision turn without a menu) gets HTTP 400 with an OpenAI-style error that the client reports —
never a guess.

Replies are **reproducible**: the random draws come from a generator seeded by a hash of the
server's ``seed``, the request's ``seed`` and its messages, so the same request always gets the same
reply (hvae's response cache and ``--resume`` stay exact) while different calls vary. ``temperature``
and ``top_p`` of the request are ignored: the server's β is the model's temperature.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from hvae.agents import svo
from hvae.agents.llm.loopback import HOST, HTTPError, LoopbackService, Request, Response, chat_completion, chat_request, message_text
from hvae.agents.llm.prompts import CATEGORY_TEXT, LETTERS

MODEL_NAME = "hvae-oracle"
DEFAULT_PORT = 8765
INVALID_TEXT = "I cannot decide between these options."
MAX_AMOUNT = 1e12  # |amount| of a menu option the oracle reads (a 400-digit number is refused, not inf)

_ANGLE = re.compile(r"angle (-?\d+(?:\.\d+)?)° on the social value orientation ring")
_OPTION = re.compile(r"^([A-Z]): (-?\d+(?:\.\d+)?), (-?\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_REASK = "could not be used"
_TALK = "you can talk with the participant"  # hvae.agents.llm.talk.talk_prompt
_SPOKEN_OPTION = re.compile(r"^- (-?\d+(?:\.\d+)?) for you, (-?\d+(?:\.\d+)?) for your partner\s*$", re.MULTILINE)


class OracleRequestError(ValueError):
    """A request the oracle cannot answer (no value, two values, no menu): HTTP 400."""


@dataclass(frozen=True)
class OracleModel:
    """The logit value-rational chooser behind the server (see the module docstring)."""

    beta: float = 1.0
    position_bias: float = 0.0
    invalid_rate: float = 0.0
    seed: int = 0
    model: str = MODEL_NAME

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number ≥ 0, got {self.beta}")
        if not math.isfinite(self.position_bias):
            raise ValueError(f"position_bias must be finite, got {self.position_bias}")
        if not 0.0 <= self.invalid_rate <= 1.0:
            raise ValueError(f"invalid_rate must be in [0, 1], got {self.invalid_rate}")

    def choice_probabilities(self, theta: float, options: np.ndarray) -> np.ndarray:
        """P(option) in display order for value ``theta`` (degrees) on ``options`` (k × 2)."""
        rad = math.radians(theta)
        utilities = math.cos(rad) * options[:, 0] + math.sin(rad) * options[:, 1]
        # β times the shortfall from the best option (≤ 0, exactly 0 for the best): a huge β
        # (1e307) gives -inf, never inf - inf, so the probabilities stay numbers
        with np.errstate(over="ignore", invalid="ignore"):
            logits = self.beta * (utilities - utilities.max())
        logits[0] += self.position_bias
        logits -= logits.max()
        weights = np.exp(logits)
        return weights / weights.sum()

    def reply(self, body: dict[str, Any]) -> str:
        """The reply text to one chat-completions request body (raises :class:`OracleRequestError`)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise OracleRequestError("oracle: the request has no messages")
        theta = find_value(messages)
        user_texts = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
        last_user = user_texts[-1] if user_texts else ""
        if not _is_decision_turn(last_user, body.get("response_format")):
            return talk_reply(theta, last_user)
        options = find_menu(user_texts)
        rng = np.random.default_rng(self._request_seed(body))
        if rng.random() < self.invalid_rate:
            return INVALID_TEXT
        probabilities = self.choice_probabilities(theta, options)
        letter = LETTERS[int(rng.choice(len(options), p=probabilities))]
        if _wants_json(body.get("response_format")):
            return json.dumps({"choice": letter, "reason": f"best for a value of {theta:g}°"})
        return letter

    def _request_seed(self, body: dict[str, Any]) -> int:
        identity = {"server": self.seed, "seed": body.get("seed"), "messages": body.get("messages")}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).digest()
        return int.from_bytes(digest[:8], "little")


@functools.cache
def known_wordings() -> dict[str, float]:
    """Every category wording the project ships → its canonical angle (built once; do not modify it)."""
    from hvae.agents.llm.wordings import PARAPHRASES

    table = {text: svo.CATEGORY_ANGLES[name] for name, text in CATEGORY_TEXT.items()}
    for name, texts in PARAPHRASES.items():
        table.update({text: svo.CATEGORY_ANGLES[name] for text in texts})
    return table


def find_value(messages: list[dict[str, Any]]) -> float:
    """The value angle stated in the system and user messages (see the module docstring)."""
    system = [message_text(m.get("content")) for m in messages if m.get("role") == "system"]
    first_user = next((message_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
    texts = [*system, first_user]  # where the pipeline states the value; later turns may quote others
    found: set[float] = set()
    wordings = known_wordings()
    for text in texts:
        found.update(float(match) for match in _ANGLE.findall(text))
        found.update(angle for wording, angle in wordings.items() if wording in text)
    if not found:
        raise OracleRequestError("oracle: no value found in the system or user messages (nothing to be rational about)")
    if len(found) > 1:
        raise OracleRequestError(f"oracle: the conversation states several values ({', '.join(f'{a:g}°' for a in sorted(found))})")
    theta = found.pop()
    if not -90.0 <= theta <= 90.0:
        raise OracleRequestError(f"oracle: the value angle {theta:g}° is outside [-90, 90]")
    return theta


def find_menu(user_texts: list[str]) -> np.ndarray:
    """The (self, other) options of the latest user message that shows a menu, in display order."""
    for text in reversed(user_texts):
        matches = _OPTION.findall(text)
        if not matches:
            continue
        letters = "".join(m[0] for m in matches)
        if letters != LETTERS[: len(matches)] or len(matches) < 2:
            raise OracleRequestError(f"oracle: the menu's options are lettered {letters!r}, expected A, B, C, … in order")
        options = np.array([[float(s), float(o)] for _, s, o in matches])
        if not np.all(np.abs(options) <= MAX_AMOUNT):
            raise OracleRequestError(f"oracle: a menu amount is beyond ±{MAX_AMOUNT:g}")
        return options
    raise OracleRequestError("oracle: a decision was asked but no user message shows a menu ('A: 85, 85' lines)")


def _is_decision_turn(last_user: str, response_format: Any) -> bool:
    if _OPTION.search(last_user) or _REASK in last_user:
        return True
    schema = _schema(response_format)
    return isinstance(schema, dict) and "choice" in (schema.get("properties") or {})


def _schema(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    return response_format.get("schema")


def _wants_json(response_format: Any) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") in ("json_schema", "json_object")


_GOALS = {
    "altruistic": "to give the other participant as many coins as I can, whatever I keep",
    "prosocial": "to make the total number of coins for both of us as large as I can",
    "individualistic": "to get as many coins as I can for myself, whatever the other participant gets",
    "competitive": "to end up with as many more coins than the other participant as I can",
}


def talk_reply(theta: float, last_user: str) -> str:
    """The reply to a turn that is not a decision: a short plain sentence.

    ``last_user`` is the latest user message. In pre-play talk (``communication``: the message asks
    to talk with the partner and lists the options as ``- 85 for you, 76 for your partner``) the
    oracle states its intention, the option of highest utility for its value: ``I will take 85,
    76.`` — the wording hvae's promise-keeping measure reads. A question about the goal gets the
    goal, anything else (the value description) a one-sentence description of the value (shorter
    than the "two or three sentences" asked for: the served conversations, and so the draws every
    test and example depends on, stay those of earlier versions). This is the one place where the
    oracle answers in words.
    """
    if _TALK in last_user and (spoken := _SPOKEN_OPTION.findall(last_user)):
        rad = math.radians(theta)
        utilities = [math.cos(rad) * float(s) + math.sin(rad) * float(o) for s, o in spoken]
        own, other = spoken[int(np.argmax(utilities))]
        return f"I will take {own}, {other}."
    name = svo.category(theta)
    weights = f"I weigh my own coins by {math.cos(math.radians(theta)):.2f} and the other's by {math.sin(math.radians(theta)):.2f}"
    if "goal" in last_user.lower():
        return f"My goal is {_GOALS[name]}."
    return f"I hold a {name} value ({theta:g}° on the ring): {weights}, and I choose what is best by that measure."


# ---------------------------------------------------------------------------------------- HTTP


class OracleServer(LoopbackService):
    """:class:`OracleModel` served over HTTP on 127.0.0.1 (``port=0``: a free port).

    Requests are read by :mod:`hvae.agents.llm.loopback` (bounded, validated, keep-alive) and
    answered on its event loop: a reply is a short computation, so it never waits.
    """

    thread_name = "hvae-oracle"
    reuse_address = True

    def __init__(self, model: OracleModel | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.model = model or OracleModel()
        self.counts: dict[str, int] = {"ok": 0, "error": 0}
        self._lock = threading.Lock()

    def count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "GET" and path == "/v1/models":
            return Response.json(200, {"object": "list", "data": [{"id": self.model.model, "object": "model", "created": 0, "owned_by": "hvae"}]})
        if request.method != "POST" or path != "/v1/chat/completions":
            return Response.error(404, f"no route {request.method} {request.path[:200]}")
        try:
            body = chat_request(request.json())
            text = self.model.reply(body)
        except (HTTPError, OracleRequestError) as error:
            self.count("error")  # counted before the reply: a client may read counts at once
            return Response.error(400, error.message if isinstance(error, HTTPError) else str(error))
        self.count("ok")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Response.json(200, chat_completion(body, text, model=self.model.model,
                                                  completion_id=f"chatcmpl-oracle-{digest}", fingerprint="hvae-oracle"))


def _accepts_connections(port: int) -> bool:
    """Whether something listens on the loopback ``port`` (then the server is up; its answers failed)."""
    import socket

    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def start_hint(backends: dict[str, Any]) -> str | None:
    """How to start the oracle server a scenario's backends point at (for the "unreachable" error)."""
    from urllib.parse import urlsplit

    for config in backends.values():
        if getattr(config, "kind", None) == "openai" and getattr(config, "model", None) == MODEL_NAME:
            parts = urlsplit(str(getattr(config, "base_url", "") or ""))
            port = parts.port or DEFAULT_PORT
            if parts.hostname in (HOST, "localhost") and not _accepts_connections(port):
                return f"start the oracle server first: hvae serve-oracle --port {port}"
    return None
