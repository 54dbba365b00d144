"""The x-gateway-* hints over a resolved route: pure, so every case is a table row."""

from __future__ import annotations

import pytest

from tokenway.gateway.context import Route
from tokenway.gateway.request_hints import apply_request_hints

ROUTE = Route("chat", "pool", "llama-8b", None, 0)
OBJECTIVES = {"batch": -1, "critical": 5}


def hints(
    headers: dict[str, str], *, via_gateway: bool, route: Route = ROUTE
) -> tuple[Route, dict]:
    notes: dict[str, str] = {}
    out = apply_request_hints(
        route,
        headers,
        OBJECTIVES,
        via_gateway=via_gateway,
        base_model="llama-8b",
        annotations=notes,
    )
    return out, notes


def test_no_headers_keep_the_route() -> None:
    assert hints({}, via_gateway=True) == (ROUTE, {})


@pytest.mark.parametrize("via_gateway", [True, False])
def test_lowering_priority_is_always_allowed(via_gateway: bool) -> None:
    route, notes = hints({"x-gateway-inference-objective": "batch"}, via_gateway=via_gateway)
    assert route.priority == -1 and notes["objective"] == "batch"


def test_raising_priority_only_behind_a_gateway() -> None:
    header = {"x-gateway-inference-objective": "critical"}
    assert hints(header, via_gateway=True)[0].priority == 5
    route, notes = hints(header, via_gateway=False)
    assert route.priority == 0
    assert notes["objective"].startswith("ignored")


def test_unknown_objective_keeps_the_model_priority() -> None:
    route, notes = hints({"x-gateway-inference-objective": "nope"}, via_gateway=True)
    assert route == ROUTE and notes["objective"] == "unknown: nope"


def test_rewrite_behind_a_gateway_to_an_adapter_and_back() -> None:
    route, notes = hints({"x-gateway-model-name-rewrite": "sql-lora"}, via_gateway=True)
    assert (route.upstream_model, route.adapter) == ("sql-lora", "sql-lora")
    adapter_route = Route("sql", "pool", "sql-lora", "sql-lora", 0)
    back, _ = hints(
        {"x-gateway-model-name-rewrite": "llama-8b"}, via_gateway=True, route=adapter_route
    )
    assert (back.upstream_model, back.adapter) == ("llama-8b", None)
    assert notes["model_rewrite"] == "sql-lora"


def test_rewrite_from_a_client_is_ignored() -> None:
    route, notes = hints({"x-gateway-model-name-rewrite": "other"}, via_gateway=False)
    assert route == ROUTE and notes["model_rewrite"].startswith("ignored")
