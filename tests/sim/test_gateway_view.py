"""Virtual-time snapshots equal what the gateway's scraper reads from the live /metrics text."""

from __future__ import annotations

import dataclasses

from tokenway.datalayer.parsers.vllm import VllmParser
from tokenway.sim import exposition, tokenizer
from tokenway.sim.engine import EngineCore
from tokenway.sim.gateway_view import scrape
from tokenway.sim.profiles import get_profile
from tokenway.sim.request import SimRequest


def test_scrape_matches_the_vllm_parser_on_rendered_metrics() -> None:
    engine = EngineCore(get_profile("l4-8b"), max_loras=1)
    for i, lora in enumerate(["a", "b", None, "a"]):
        prompt = tokenizer.encode("shared prefix " * 30 + str(i))
        engine.add_request(SimRequest(f"r{i}", prompt, 50, 0.0, lora), 0.0)
    now = 0.0
    for _ in range(3):
        plan = engine.schedule(now)
        assert plan is not None
        engine.apply(plan)
        now = plan.end
    direct = scrape(engine, now)
    parsed = VllmParser().parse(exposition.render(engine, "m", now))
    assert direct.running > 0 and direct.waiting > 0 and direct.waiting_loras == {"b"}
    assert dataclasses.replace(direct, scraped_at=None) == parsed
