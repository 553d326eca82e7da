"""Running coroutines together so that one failure stops them all.

``asyncio.gather`` propagates the first exception but lets the other coroutines run on, so after
a backend fails, sibling decisions keep calling it and their errors surface later as "Task
exception was never retrieved" noise. :func:`gather_all` cancels the siblings instead and waits
until they have stopped before re-raising, so a failed round leaves nothing running::

    results = await gather_all(decide(a) for a in agents)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Results in order; on the first exception the others are cancelled, then it is re-raised."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
