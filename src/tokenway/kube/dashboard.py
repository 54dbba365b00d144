"""A Grafana dashboard (ConfigMap picked up by the Grafana sidecar): TTFT, tokens/s, queue depth,
KV-cache use and prefix-cache hit rate per pool, and gateway tokens per model; SLO lines drawn."""

from __future__ import annotations

import json
from typing import Any

from tokenway.config.platform import PlatformConfig
from tokenway.kube.objects import Manifest, labels, manifest, meta

NAME = "tokenway-dashboard"
UID = "tokenway-inference"


def _panel(index: int, title: str, unit: str, exprs: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _ttft_targets(config: PlatformConfig) -> list[tuple[str, str]]:
    exprs = [
        (
            "histogram_quantile(0.95, sum by (le, tokenway_io_pool) "
            "(rate(vllm:time_to_first_token_seconds_bucket[5m])))",
            "p95 {{tokenway_io_pool}}",
        )
    ]
    for slo in config.slos:
        if slo.ttft_p95 is not None:
            exprs.append((f"vector({slo.ttft_p95:g})", f"SLO {slo.model}"))
    return exprs


def dashboard(config: PlatformConfig) -> dict[str, Any]:
    by_pool = "sum by (tokenway_io_pool)"
    panels = [
        ("Time to first token (p95)", "s", _ttft_targets(config)),
        (
            "Output tokens per second",
            "short",
            [(f"{by_pool} (rate(vllm:generation_tokens_total[1m]))", "{{tokenway_io_pool}}")],
        ),
        (
            "Queue depth (waiting requests)",
            "short",
            [(f"{by_pool} (vllm:num_requests_waiting)", "{{tokenway_io_pool}}")],
        ),
        (
            "KV-cache utilisation",
            "percentunit",
            [("avg by (tokenway_io_pool) (vllm:kv_cache_usage_perc)", "{{tokenway_io_pool}}")],
        ),
        (
            "Prefix-cache hit rate",
            "percentunit",
            [
                (
                    f"{by_pool} (rate(vllm:prefix_cache_hits_total[5m])) / "
                    f"{by_pool} (rate(vllm:prefix_cache_queries_total[5m]))",
                    "{{tokenway_io_pool}}",
                )
            ],
        ),
        (
            "Gateway tokens per second by model and type",
            "short",
            [
                (
                    "sum by (gen_ai_request_model, gen_ai_token_type) "
                    "(rate(gen_ai_client_token_usage_sum[1m]))",
                    "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                )
            ],
        ),
        (
            "Tokens per second by team",
            "short",
            [
                (
                    "sum by (team, type) (rate(tokenway_team_tokens_total[5m]))",
                    "{{team}} {{type}}",
                )
            ],
        ),
        (
            "Spend per hour by team",
            "currencyUSD",
            [("sum by (team) (rate(tokenway_team_cost_total[1h])) * 3600", "{{team}}")],
        ),
        (
            "Requests refused by limits, by team",
            "reqps",
            [
                (
                    "sum by (team, reason) (rate(tokenway_limit_rejections_total[5m]))",
                    "{{team}} {{reason}}",
                )
            ],
        ),
    ]
    return {
        "uid": UID,
        "title": "tokenway: inference",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": [_panel(i, *p) for i, p in enumerate(panels)],
    }


def dashboard_config_map(config: PlatformConfig) -> Manifest:
    metadata = meta(NAME, config.observability.namespace, labels("dashboard", NAME))
    metadata["labels"]["grafana_dashboard"] = "1"
    text = json.dumps(dashboard(config), indent=2, sort_keys=True)
    return manifest("v1", "ConfigMap", metadata, data={"tokenway.json": text + "\n"})
