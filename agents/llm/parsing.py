"""Reply parsing: turn an LLM's reply into the position of the option it chose.

The parser accepts a JSON object ``{"choice": "B", "reason": "..."}`` (what structured output asks
for) or plain text, and is deliberately strict so that an ambiguous reply is re-asked rather than
guessed. A reply is **valid** when it names exactly one letter of the menu shown:

* the whole reply is one letter (``B``, ``"B."``, ``**B**``, ``(B)``);
* a keyword names it: ``Option B``, ``I choose B``, ``my answer is B``, ``Choice: B``;
* it starts with the letter followed by punctuation: ``B: 85, 85 — because …`` (but a reply
  that lists several options line by line, ``A: 85, 85`` / ``B: 85, 76``, is not a choice).

It is **invalid**, with a reason that the corrective re-ask quotes back, when it is empty, too
long, malformed JSON, names no letter (refusals land here), names two different letters, or names
a letter outside the menu. Plain-text matching only trusts capital letters next to a keyword or at
the start, so the pronoun "I" and the article "A" in prose are never mistaken for options.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hvae.agents.llm.prompts import LETTERS

DEFAULT_MAX_REPLY_CHARS = 2000

_WHOLE = re.compile(r"^[\s\"'*`(\[]*(?:option\s+)?([A-Za-z])[\s\"'*`)\].!:]*$", re.IGNORECASE)
_KEYWORD = re.compile(
    r"\b(?:option|choice|answer|choose|chose|pick|picked|select|selected|go with|letter)\b"
    r"(?:\s+(?:is|would be|will be|=))?\s*[:\-]?\s*[\"'*`(\[]*([A-Z])\b(?![a-z'])",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^[\s\"'*`(\[]*([A-Z])\s*[).:\-—,]")
_LINE_LABEL = re.compile(r"^\s*[\"'*`(\[]*([A-Z])\s*[).:]", re.MULTILINE)
_PAIR = re.compile(r"^\W*([A-Z])\W*(?:or|and|,|/|&)\W*([A-Z])\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedReply:
    """The outcome of parsing one reply: ``position`` (0 = "A") or a ``problem``."""

    position: int | None
    reason: str | None = None
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.position is not None


def _letter_position(letter: str, n_options: int) -> ParsedReply:
    letter = letter.upper()
    allowed = LETTERS[:n_options]
    if letter not in allowed:
        return ParsedReply(None, problem=f"{letter} is not one of the options {allowed[0]}-{allowed[-1]}")
    return ParsedReply(allowed.index(letter))


def parse_reply(text: str | None, n_options: int, max_chars: int = DEFAULT_MAX_REPLY_CHARS) -> ParsedReply:
    """Parse a reply to a menu of ``n_options`` lettered options."""
    if text is None or not text.strip():
        return ParsedReply(None, problem="the reply was empty")
    text = text.strip()
    if len(text) > max_chars:
        return ParsedReply(None, problem=f"the reply was too long ({len(text)} characters)")
    if text.startswith("{") or text.startswith("```"):
        return _parse_json(text, n_options)
    return _parse_text(text, n_options)


def _parse_json(text: str, n_options: int) -> ParsedReply:
    body = text.strip("`").strip()
    if body.lower().startswith("json"):
        body = body[4:].strip()
    start, end = body.find("{"), body.rfind("}")
    try:
        if start < 0 or end < start:
            raise ValueError("no object")
        data = json.loads(body[start : end + 1])
    except ValueError:
        return ParsedReply(None, problem="the reply was not valid JSON")
    if not isinstance(data, dict) or "choice" not in data:
        return ParsedReply(None, problem='the JSON object had no "choice" field')
    reason = data.get("reason")
    reason = str(reason)[:500] if reason is not None else None
    choice = str(data["choice"]).strip()
    parsed = _parse_text(choice, n_options)
    return ParsedReply(parsed.position, reason=reason, problem=parsed.problem)


def _parse_text(text: str, n_options: int) -> ParsedReply:
    whole = _WHOLE.match(text)
    if whole:
        return _letter_position(whole.group(1), n_options)
    labels = list(dict.fromkeys(m.group(1) for m in _LINE_LABEL.finditer(text)))
    if len(labels) > 1:
        return ParsedReply(None, problem=f"the reply listed several options ({', '.join(labels)}) instead of choosing one")
    pair = _PAIR.match(text)
    if pair and pair.group(1).upper() != pair.group(2).upper():
        return ParsedReply(None, problem=f"the reply named two options ({pair.group(1).upper()} and {pair.group(2).upper()})")
    candidates = [m.group(1) for m in _KEYWORD.finditer(text) if m.group(1).isupper()]
    leading = _LEADING.match(text)
    if leading:
        candidates.insert(0, leading.group(1))
    distinct = list(dict.fromkeys(c.upper() for c in candidates))
    if not distinct:
        return ParsedReply(None, problem="the reply named no option letter")
    if len(distinct) > 1:
        return ParsedReply(None, problem=f"the reply named several options ({', '.join(distinct)})")
    return _letter_position(distinct[0], n_options)
