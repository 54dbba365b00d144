from __future__ import annotations

import gc
import weakref

import pytest

from tokenway.heap import frozen


def test_frozen_releases_the_heap_also_on_errors() -> None:
    with pytest.raises(RuntimeError), frozen():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("stage failed")
    assert gc.get_freeze_count() == 0


def test_frozen_objects_are_still_freed_by_reference_counting() -> None:
    class Payload:
        pass

    held = [Payload()]
    ref = weakref.ref(held[0])
    with frozen():
        held.clear()
        assert ref() is None
