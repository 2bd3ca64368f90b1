"""Running the pure-Python solver and generator over every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_chunks(
    function: Callable[[list[T]], list[R]],
    items: Sequence[T],
    workers: int | None = None,
    chunk: int | None = None,
    done: Callable[[int], None] | None = None,
) -> list[R]:
    """``function`` (list -> list of as many results) over ``items`` cut into chunks, in order.

    Args:
        function: a module-level function (or a ``functools.partial`` of one), so
            that worker processes can receive it.
        workers: processes (default: every core); 1, or a single chunk, runs here.
        chunk: items per call (default: about 8 chunks per worker, 50 at least).
        done: called with the number of results so far after each chunk.
    """
    workers = workers or os.cpu_count() or 1
    chunk = chunk or max(50, len(items) // (workers * 8))
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    out: list[R] = []
    if workers == 1 or len(chunks) <= 1:
        parts = map(function, chunks)
        return _collect(parts, out, done)
    with ProcessPoolExecutor(workers) as pool:
        return _collect(pool.map(function, chunks), out, done)


def _collect(parts, out: list, done: Callable[[int], None] | None) -> list:
    for part in parts:
        out.extend(part)
        if done is not None:
            done(len(out))
    return out
