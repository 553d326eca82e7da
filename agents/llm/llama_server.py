"""llama-cpp-python's OpenAI-compatible server, started safely on every CPU.

``python -m llama_cpp.server`` loads models with llama.cpp's extra buffer types (weight
repacking), whose AMX path crashes at the first request on Intel CPUs with AMX (see
:mod:`hvae.agents.llm.embedded_worker`). This launcher switches them off the same way the
embedded backend does and then runs the server unchanged, with all of its arguments::

    python -m hvae.agents.llm.llama_server --model FILE.gguf --host 127.0.0.1 --port 8000

As there, they are switched off only on CPUs with AMX; ``HVAE_LLAMA_EXTRA_BUFTS=0`` or ``1`` decides instead.
"""

from __future__ import annotations

import runpy

from hvae.agents.llm.embedded_worker import disable_extra_buffer_types, extra_buffer_types_wanted

if __name__ == "__main__":
    if not extra_buffer_types_wanted():
        disable_extra_buffer_types()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
