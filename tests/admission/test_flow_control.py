from __future__ import annotations

from tokenway.admission.flow_control import FlowQueues


def _drain(queues: FlowQueues) -> list[str]:
    out = []
    while (item := queues.pop()) is not None:
        out.append(item.key)
    return out


def test_strict_priority_between_bands() -> None:
    queues = FlowQueues(max_per_band=10, ttl=30)
    queues.push("low", -1, "t", 0.0)
    queues.push("mid", 0, "t", 0.1)
    queues.push("high", 2, "t", 0.2)
    assert _drain(queues) == ["high", "mid", "low"]


def test_flows_take_turns_so_a_flood_does_not_starve_another_tenant() -> None:
    queues = FlowQueues(max_per_band=1000, ttl=30)
    for i in range(100):
        queues.push(f"flood-{i}", 0, "flood", i * 0.001)
    queues.push("quiet-0", 0, "quiet", 1.0)
    queues.push("quiet-1", 0, "quiet", 1.1)
    order = _drain(queues)
    # The quiet tenant's two requests go out within the first four, despite arriving last.
    assert order.index("quiet-0") < 4 and order.index("quiet-1") < 4
    flood = [key for key in order if key.startswith("flood")]
    assert flood == [f"flood-{i}" for i in range(100)]  # FIFO within a flow


def test_bands_are_bounded() -> None:
    queues = FlowQueues(max_per_band=2, ttl=30)
    assert queues.push("a", 0, "t", 0.0) is not None
    assert queues.push("b", 0, "u", 0.0) is not None
    assert queues.push("c", 0, "t", 0.0) is None
    assert queues.push("d", 1, "t", 0.0) is not None  # another band has its own bound
    assert len(queues) == 3


def test_ttl_expiry_removes_only_overdue_entries() -> None:
    queues = FlowQueues(max_per_band=10, ttl=5)
    queues.push("old", 0, "t", 0.0)
    queues.push("other", 1, "u", 1.0)
    queues.push("new", 0, "t", 4.0)
    assert queues.expire(4.9) == []
    assert {item.key for item in queues.expire(6.0)} == {"old", "other"}
    assert [item.key for item in queues] == ["new"]
    assert queues.expire(9.0)[0].key == "new"
    assert len(queues) == 0


def test_remove_forgets_a_request() -> None:
    queues = FlowQueues(max_per_band=10, ttl=5)
    queues.push("a", 0, "t", 0.0)
    queues.push("b", 0, "t", 0.0)
    assert queues.remove("a")
    assert not queues.remove("a")
    assert _drain(queues) == ["b"]


def test_a_full_band_makes_room_for_a_flow_with_a_smaller_share() -> None:
    queues = FlowQueues(max_per_band=4, ttl=30)
    for i in range(4):
        assert queues.push(f"flood-{i}", 0, "flood", 0.0) is not None
    assert queues.push("flood-4", 0, "flood", 0.0) is None  # the flood has more than its share
    assert queues.push("quiet-0", 0, "quiet", 0.0) is not None
    assert [item.key for item in queues.take_evicted()] == ["flood-3"]  # its newest
    assert queues.push("quiet-1", 0, "quiet", 0.0) is not None  # 1 + 1 < 3: still fairer
    assert queues.push("quiet-2", 0, "quiet", 0.0) is None  # 2 + 1 >= 2: equal shares now
    assert [item.key for item in queues.take_evicted()] == ["flood-2"]
    assert sorted(_drain(queues)) == ["flood-0", "flood-1", "quiet-0", "quiet-1"]


def test_a_flood_cannot_keep_a_steady_tenant_out_of_a_full_band() -> None:
    queues = FlowQueues(max_per_band=10, ttl=30)
    served = {"flood": 0, "steady": 0}
    for tick in range(200):
        for i in range(50):
            queues.push(f"flood-{tick}-{i}", 0, "flood", float(tick))
        queues.push(f"steady-{tick}", 0, "steady", float(tick))
        queues.take_evicted()
        for _ in range(2):  # the pool takes two per tick
            item = queues.pop()
            assert item is not None
            served[item.flow] += 1
    assert served["steady"] >= 195  # every one of its requests gets through, give or take
