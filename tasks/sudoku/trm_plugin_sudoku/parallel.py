"""Running the pure-Python solver and generator over every core."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from trm_core import quiet_worker

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
    out: list[R] = []
    for part in imap_chunks(function, items, workers, chunk):
        out.extend(part)
        if done is not None:
            done(len(out))
    return out


def imap_chunks(
    function: Callable[[list[T]], list[R]],
    items: Sequence[T],
    workers: int | None = None,
    chunk: int | None = None,
) -> Iterator[list[R]]:
    """:func:`map_chunks`, one chunk's results at a time, in order.

    An error, or closing the iterator before its end (a caller that has seen
    enough), stops the worker processes at once, whatever they were doing: none
    is left running, and no queued chunk is started.
    """
    workers = workers or os.cpu_count() or 1
    chunk = chunk or max(50, len(items) // (workers * 8))
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    if workers == 1 or len(chunks) <= 1:
        yield from map(function, chunks)
        return
    pool = multiprocessing.get_context().Pool(workers, initializer=quiet_worker)
    try:
        yield from pool.imap(function, chunks)
    finally:
        pool.terminate()
        pool.join()
