"""Keeping CPython's cyclic garbage collector off the big, long-lived heaps (the worker's manifest, the server's
summary of it and its caches: `SettleSoon`, after each tool call).

A full collection walks every tracked object. On a 1,000-model project that is ~0.4 s in the dbt worker, and one
came every second or third edit: 0.45 s of a 1-1.8 s `project_check` after an edit went to it (bench/RESULTS.md).
`gc.freeze()` after each request moves what survived it into the permanent generation, which collections skip, so
the collector only walks what was made since. Frozen objects are still freed by reference counting; what freezing
could keep is cyclic garbage that was not yet collected. To bound that, a full collection (after unfreezing) runs
when the big structure is replaced (`epoch` changes: a manifest parsed from disk, the old one may hold cycles) and
after FULL_EVERY requests, at most every FULL_AT_MOST_S. Before each freeze, a collection walks what is not frozen yet
(what the request made: a few milliseconds after an edit), so its cyclic garbage, a long run's included, goes first;
what can still be frozen as garbage is what dies after the freeze."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Iterator

FULL_EVERY = 100
FULL_AT_MOST_S = 10.0


@contextlib.contextmanager
def collector_relaxed() -> Iterator[None]:
    """Young collections 70 times rarer inside (a one-line edit's in-place re-parse: 2-4 % of it, measured on 1,000
    models), still bounded: a parse that turns into a full one allocates gigabytes, and its cycles must go as it runs."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class HeapKeeper:
    def __init__(self) -> None:
        self.since_full = 0
        self.full_at = time.monotonic()
        self.epoch: object = None

    def settle(self, epoch: object = None, full_ok: bool = True) -> bool:
        """Call between requests; `epoch` changes when the big structure is replaced; `full_ok` False puts a due full
        collection off. Returns whether a full collection ran."""
        self.since_full += 1
        due = self.since_full >= FULL_EVERY and time.monotonic() - self.full_at >= FULL_AT_MOST_S and full_ok
        full = epoch != self.epoch or due
        if full:
            gc.unfreeze()
            gc.collect()
            self.epoch, self.since_full, self.full_at = epoch, 0, time.monotonic()
        else:
            gc.collect()  # frozen objects are not walked: this costs what the request left, garbage of long requests too
        gc.freeze()
        return full


class SettleSoon:
    """The server's HeapKeeper: settled `delay` seconds after a tool call returns, on the event loop (after an edit
    the next call is usually waiting for the worker's parse by then), once for a burst of calls. Without it a full
    collection over the project's summary and the column caches took 0.25 s of one `project_check` in ten, on a
    1,000-model project. The periodic full collection (a few hundred ms with the memory toolset's libraries loaded)
    waits until no call is running: under a steady load of HTTP clients it would stall them all at once. It waits
    FULL_BUSY_S at most, and not once the heap doubled since the last one (what calls still used when it was frozen
    and dropped since, cycles included, is freed only by a full collection; a quarter, CPython's own measure, gave
    20 HTTP clients a full collection every few seconds: read-only p95 while a build ran 41 -> 69-80 ms). The heap is
    measured in pymalloc's blocks (sys.getallocatedblocks, ~1 ms): gc.get_freeze_count walks the frozen list, and on
    a 1,000-model project that was 40 ms of every settle, on the event loop."""

    def __init__(self, delay: float = 0.1) -> None:
        self.keeper = HeapKeeper()
        self.delay = delay
        self.pending: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running = 0  # tool calls in flight
        self.blocks_at_full = 0  # sys.getallocatedblocks() right after the last full collection

    def before_call(self) -> None:
        self.running += 1

    def after_call(self) -> None:
        self.running -= 1
        loop = asyncio.get_running_loop()
        if self.pending is None or self.loop is not loop:  # (a timer of a loop that closed never fires)
            self.loop, self.pending = loop, loop.call_later(self.delay, self._settle)

    def _settle(self) -> None:
        self.pending = None
        gc.collect()  # (young objects only: the rest is frozen) first, so that their garbage is not measured below
        grown = self.blocks_at_full > 0 and sys.getallocatedblocks() > 2 * self.blocks_at_full
        busy_for_long = time.monotonic() - self.keeper.full_at > FULL_BUSY_S
        full = self.keeper.settle(full_ok=self.running == 0 or busy_for_long or grown)
        if full or not self.blocks_at_full:  # (the first settle is the first measure)
            self.blocks_at_full = sys.getallocatedblocks()


FULL_BUSY_S = 600.0
