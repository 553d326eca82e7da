"""The model's private event loop: where LLM deciders' coroutines run, however the model is driven.

LLM clients bind to the event loop they first run on, so a model runs all of its coroutines on one
loop of its own, :class:`PrivateLoop`. With no loop running in the calling thread, the private loop
runs there. Inside a running loop (Jupyter, Mesa's Solara visualisation, a coroutine that calls
``model.step()``) ``run_until_complete`` would raise "Cannot run the event loop while another loop
is running", so the private loop runs in a worker thread while the caller waits::

    loop = PrivateLoop()
    loop.run(some_coroutine())   # the result, from plain Python or inside a running loop
    loop.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class PrivateLoop:
    """An event loop owned by one model, created on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to completion on the private loop and return its result."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coroutine)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hvae-model-loop") as worker:
            return worker.submit(self._loop.run_until_complete, coroutine).result()

    def close(self) -> None:
        """Finish async generators and close the loop (a later :meth:`run` makes a new one)."""
        if self._loop is not None:
            self.run(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None
