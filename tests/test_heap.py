"""server/heap.py: the dbt worker freezes its heap between requests (full collections of a 1,000-model manifest cost
~0.4 s and came every second or third edit); cyclic garbage is still collected: young at every settle, frozen at the
next full collection (a replaced manifest, or every FULL_EVERY requests). Real gc, no mocks."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from server import heap
from server.heap import HeapKeeper


class Node:
    other: object


def garbage_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def keeper() -> Iterator[HeapKeeper]:
    yield HeapKeeper()
    gc.unfreeze()
    gc.collect()


def test_settle_freezes_and_still_collects_cycles(keeper: HeapKeeper) -> None:
    assert keeper.settle(1) is True  # a first structure: full collection
    assert gc.get_freeze_count() > 0
    young = garbage_cycle()
    assert keeper.settle(1) is False and young() is None  # young garbage goes before the freeze

    alive = Node()
    alive.other = alive
    ref = weakref.ref(alive)
    keeper.settle(1)  # frozen while alive
    del alive
    assert keeper.settle(1) is False and ref() is not None  # frozen cyclic garbage waits for a full collection
    assert keeper.settle(2) is True and ref() is None  # the big structure was replaced: everything walked again


def test_a_full_collection_comes_every_so_many_requests(keeper: HeapKeeper, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "FULL_EVERY", 3)
    monkeypatch.setattr(heap, "FULL_AT_MOST_S", 0.0)
    keeper.settle("m")
    alive = Node()
    alive.other = alive
    ref = weakref.ref(alive)
    keeper.settle("m")
    del alive
    assert [keeper.settle("m") for _ in range(3)] == [False, True, False] and ref() is None


async def test_the_server_settles_once_after_a_burst_of_calls() -> None:
    """SettleSoon (after each tool call in server/registration.py): one settle for calls close together, after the delay."""
    import asyncio

    soon = heap.SettleSoon(delay=0.05)
    try:
        for _ in range(3):
            soon.before_call()
            soon.after_call()
        assert soon.pending is not None and soon.keeper.since_full == 0
        await asyncio.sleep(0.15)
        assert soon.pending is None and soon.keeper.since_full == 1  # settled once, not three times
        assert gc.get_freeze_count() > 0
        soon.before_call()
        soon.after_call()
        await asyncio.sleep(0.15)
        assert soon.keeper.since_full == 2
        # a due full collection waits while a call runs (HTTP clients would all stall), and runs once none does
        import time

        overdue = time.monotonic() - heap.FULL_AT_MOST_S - 1  # due, but not yet FULL_BUSY_S late
        soon.keeper.since_full, soon.keeper.full_at = heap.FULL_EVERY, overdue
        soon.before_call(), soon.before_call(), soon.after_call()  # one still running
        await asyncio.sleep(0.15)
        assert soon.keeper.full_at == overdue
        soon.after_call()
        await asyncio.sleep(0.15)
        assert soon.keeper.full_at > overdue and soon.keeper.since_full == 0
        # ...unless the heap doubled since the last full collection (garbage frozen while in use)
        soon.keeper.since_full, soon.keeper.full_at = heap.FULL_EVERY, overdue
        soon.blocks_at_full = max(1, sys.getallocatedblocks() // 3)
        soon.before_call(), soon.before_call(), soon.after_call()
        await asyncio.sleep(0.15)
        assert soon.keeper.full_at > overdue
        soon.after_call()
    finally:
        gc.unfreeze()


def test_the_collector_is_relaxed_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with heap.collector_relaxed():
        assert gc.get_threshold()[0] > 10 * before[0]
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), heap.collector_relaxed():
        raise RuntimeError
    assert gc.get_threshold() == before
