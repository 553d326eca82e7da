"""The embedded model's worker process: llama.cpp runs here, never in the run's own process.

A native crash in llama.cpp (an illegal instruction, a segmentation fault such as the AMX
repacking fault on some Intel CPUs, see the README's troubleshooting) or an out-of-memory kill
takes down only this process: the parent (:class:`~hvae.agents.llm.embedded.EmbeddedClient`)
sees the pipe close, reports which signal ended the worker, starts a fresh one and retries, or
stops the run as ``failed`` — never with half-written files marked complete.

Protocol: JSON lines. The parent writes one request per line on the worker's stdin and reads one
reply per line from a private copy of the worker's original stdout (the worker points its own
file descriptor 1 at stderr, so nothing llama.cpp prints can corrupt the protocol):

* the first line configures the worker (``model_path``, ``n_ctx``, ``n_threads``, ``seed``,
  ``prompt_cache_mb``); it answers ``{"ready": true, ...}`` once the model is loaded, or
  ``{"ok": false, "error": ...}``;
* every further line is one chat completion: ``messages`` (role/content dicts), ``max_tokens``,
  ``temperature``, ``top_p``, ``seed``, and optionally ``letters`` (the reply is constrained by a
  grammar to exactly one of these letters) or ``json_schema`` (a JSON reply following the schema);
  the answer carries ``content``, ``finish_reason``, ``prompt_tokens``, ``completion_tokens`` and
  ``reused_tokens`` (prompt tokens whose KV state came from the prefix cache).

Speed: each agent's decisions share its setup conversation as a prompt prefix. After every call
the worker keeps the KV state of the sequence it just processed (only the sequence's own cells —
llama-cpp-python's ``save_state`` also copies a 512 × vocabulary logits matrix, about 100 MB
per state for SmolLM2, which is why its RAM cache ignored its cap); before a call it restores the
cached state that shares the longest prefix with the new prompt, so only the new tail is
processed. The cache is bounded by ``prompt_cache_mb`` (least recently used states go first).

Safety: on CPUs with Intel AMX the model is loaded with llama.cpp's "extra buffer types" (weight
repacking, whose AMX path is used there) switched off: llama-cpp-python's ``-march=native`` build
faults inside that path at the first decode on such CPUs, and with them off the same build
answers normally. Elsewhere they stay on (they speed up some quantisation types).
``HVAE_LLAMA_EXTRA_BUFTS=0`` or ``1`` overrides the choice.

Run as ``python -m hvae.agents.llm.embedded_worker``; there is nothing to call from Python here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import OrderedDict
from typing import Any

import numpy as np


def _protocol_streams() -> tuple[Any, Any]:
    """(requests in, replies out); afterwards fd 1 is stderr so stray prints cannot corrupt replies."""
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin, os.fdopen(out_fd, "w", buffering=1, encoding="utf-8")


def cpu_has_amx(cpuinfo: str | None = None) -> bool:
    """Whether the CPU advertises Intel AMX tiles (``amx_tile`` in ``/proc/cpuinfo``'s flags)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    return any(line.startswith("flags") and " amx_tile" in line for line in cpuinfo.splitlines())


def extra_buffer_types_wanted() -> bool:
    """Use llama.cpp's extra buffer types? ``HVAE_LLAMA_EXTRA_BUFTS=1``/``0`` decides; by default
    they are used except on CPUs with AMX, where their AMX path faults."""
    setting = os.environ.get("HVAE_LLAMA_EXTRA_BUFTS")
    if setting in ("0", "1"):
        return setting == "1"
    return not cpu_has_amx()


def disable_extra_buffer_types() -> None:
    """Make every llama.cpp model loaded from now on in this process skip the extra buffer types.

    llama-cpp-python builds a model's parameters from ``llama_model_default_params()`` inside
    ``Llama.__init__`` and has no keyword for ``use_extra_bufts``, so the defaults are patched.
    """
    import llama_cpp.llama_cpp as native

    original = native.llama_model_default_params
    if getattr(original, "hvae_patched", False):
        return

    def without_extra_buffers():
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    without_extra_buffers.hvae_patched = True  # type: ignore[attr-defined]
    native.llama_model_default_params = without_extra_buffers


def load_model(config: dict[str, Any]):
    """A ``llama_cpp.Llama`` for the configured GGUF, with extra buffer types off (see module doc)."""
    import llama_cpp

    if not extra_buffer_types_wanted():
        disable_extra_buffer_types()
    threads = int(config.get("n_threads") or 1)
    return llama_cpp.Llama(
        model_path=config["model_path"],
        n_ctx=int(config.get("n_ctx", 2048)),
        n_threads=threads,
        n_threads_batch=threads,
        seed=int(config.get("seed", 0)) & 0x7FFFFFFF,
        flash_attn=True,  # measured ~8% faster prompt processing for SmolLM2 on 2 cores
        verbose=False,
    )


def chat_formatter(llm, model_path: str = "the model"):
    """The GGUF's own chat template as a llama-cpp formatter (also used to count tokens before a run)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError(f"{model_path} has no chat template in its metadata")
    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


class PrefixCache:
    """KV states of recent sequences, restored by longest common token prefix (bounded in bytes)."""

    def __init__(self, llm, capacity_bytes: int) -> None:
        import llama_cpp.llama_cpp as native

        self.native = native
        self.llm = llm
        self.capacity = capacity_bytes
        self.entries: OrderedDict[int, tuple[np.ndarray, bytes]] = OrderedDict()
        self.size = 0
        self._next = 0

    def save(self) -> None:
        """Keep the state of the sequence now in the context."""
        llm, native = self.llm, self.native
        n = int(llm.n_tokens)
        if self.capacity <= 0 or n == 0:
            return
        tokens = np.array(llm.input_ids[:n], dtype=np.intc)
        for key, (cached, _) in list(self.entries.items()):
            # An entry sharing most of itself with this sequence (the same agent's setup
            # conversation, an earlier round's decision after it) is superseded by this one.
            if _common_prefix(cached, tokens) * 2 >= len(cached):
                self._drop(key)
        size = native.llama_state_seq_get_size(llm._ctx.ctx, 0)
        if size > self.capacity:
            return
        buffer = (native.ctypes.c_uint8 * size)()
        written = native.llama_state_seq_get_data(llm._ctx.ctx, buffer, size, 0)
        data = bytes(buffer)[:written]
        while self.entries and self.size + len(data) > self.capacity:
            self._drop(next(iter(self.entries)))
        self.entries[self._next] = (tokens, data)
        self.size += len(data)
        self._next += 1

    def _drop(self, key: int) -> None:
        _, data = self.entries.pop(key)
        self.size -= len(data)

    def restore_for(self, prompt: list[int]) -> None:
        """Load the cached state sharing the longest prefix with ``prompt``, if it beats the live one."""
        llm, native = self.llm, self.native
        target = np.asarray(prompt, dtype=np.intc)
        live = _common_prefix(np.asarray(llm.input_ids[: llm.n_tokens]), target)
        best_key, best = None, live
        for key, (tokens, _) in self.entries.items():
            common = _common_prefix(tokens, target)
            if common > best:
                best_key, best = key, common
        if best_key is None:
            return
        tokens, data = self.entries[best_key]
        self.entries.move_to_end(best_key)
        memory = native.llama_get_memory(llm._ctx.ctx)
        native.llama_memory_clear(memory, True)
        buffer = (native.ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if native.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0) != len(data):
            native.llama_memory_clear(memory, True)
            llm.n_tokens = 0
            return
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        llm._requires_eval = True


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class Worker:
    """Answers chat-completion requests with one model (see the module docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.llm = load_model(config)
        self.cache = PrefixCache(self.llm, int(config.get("prompt_cache_mb", 0)) << 20)
        self._grammars: dict[str, Any] = {}
        self.formatter = chat_formatter(self.llm, config["model_path"])

    def _grammar(self, request: dict[str, Any]):
        from llama_cpp import LlamaGrammar

        if request.get("letters"):
            letters = str(request["letters"])
            key = "letters:" + letters
            if key not in self._grammars:
                alternatives = " | ".join(f'"{letter}"' for letter in letters)
                self._grammars[key] = LlamaGrammar.from_string(f"root ::= {alternatives}", verbose=False)
            return self._grammars[key]
        if request.get("json_schema") is not None:
            key = "schema:" + json.dumps(request["json_schema"], sort_keys=True)
            if key not in self._grammars:
                self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(request["json_schema"]), verbose=False)
            return self._grammars[key]
        return None

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        llm = self.llm
        formatted = self.formatter(messages=request["messages"])
        prompt = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        self.cache.restore_for(prompt)
        reused = _common_prefix(np.asarray(llm.input_ids[: llm.n_tokens]), np.asarray(prompt, dtype=np.intc))
        kwargs: dict[str, Any] = {
            "max_tokens": int(request.get("max_tokens", 48)),
            "temperature": float(request.get("temperature", 0.7)),
            "seed": int(request.get("seed", 0)) & 0x7FFFFFFF,
            "stop": formatted.stop,
            "stopping_criteria": formatted.stopping_criteria,
            "grammar": self._grammar(request),
        }
        if request.get("top_p") is not None:
            kwargs["top_p"] = float(request["top_p"])
        started = time.perf_counter()
        result = llm.create_completion(prompt=prompt, **kwargs)
        elapsed = time.perf_counter() - started
        self.cache.save()
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return {
            "ok": True,
            "content": choice.get("text") or "",
            "finish_reason": choice.get("finish_reason") or "stop",
            "prompt_tokens": int(usage.get("prompt_tokens", len(prompt))),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "reused_tokens": reused,
            "compute_s": round(elapsed, 4),
        }


def main() -> int:
    requests, replies = _protocol_streams()
    first = requests.readline()
    if not first:
        return 0
    try:
        worker = Worker(json.loads(first))
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line
        replies.write(json.dumps({"ok": False, "error": f"{type(error).__name__}: {error}"}) + "\n")
        return 1
    replies.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in requests:
        if not line.strip():
            continue
        try:
            reply = worker.complete(json.loads(line))
        except Exception as error:  # noqa: BLE001 - a bad request fails that request only
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
