"""The few numbers a reader compares first, read out of lifecycle reports, and their ratios."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Metric:
    label: str
    path: tuple[str, ...]
    higher_is_better: bool
    unit: str


HEADLINE = (
    Metric("requests/s", ("successes", "throughput", "requests_per_sec"), True, "req/s"),
    Metric("output tokens/s", ("successes", "throughput", "output_tokens_per_sec"), True, "tok/s"),
    Metric("TTFT p50", ("successes", "latency", "time_to_first_token", "median"), False, "s"),
    Metric("TTFT p90", ("successes", "latency", "time_to_first_token", "p90"), False, "s"),
    Metric("TTFT p99", ("successes", "latency", "time_to_first_token", "p99"), False, "s"),
    Metric("TPOT p50", ("successes", "latency", "time_per_output_token", "median"), False, "s"),
    Metric("TPOT p90", ("successes", "latency", "time_per_output_token", "p90"), False, "s"),
    Metric("ITL p99", ("successes", "latency", "inter_token_latency", "p99"), False, "s"),
    Metric("latency p50", ("successes", "latency", "request_latency", "median"), False, "s"),
    Metric("latency p99", ("successes", "latency", "request_latency", "p99"), False, "s"),
    Metric("goodput %", ("successes", "goodput_metrics", "goodput_percentage"), True, "%"),
    Metric("failures", ("failures", "count"), False, ""),
    Metric("schedule delay p99", ("load_summary", "schedule_delay", "p99"), False, "s"),
)


def value(report: Mapping[str, Any], metric: Metric) -> float | None:
    node: Any = report
    for key in metric.path:
        if not isinstance(node, Mapping) or node.get(key) is None:
            return None
        node = node[key]
    return float(node)


def format_value(number: float | None, unit: str) -> str:
    """Seconds as milliseconds, counts without decimals, rates with one."""
    if number is None:
        return "-"
    if unit == "s":
        return f"{number * 1000:.1f} ms"
    whole = number.is_integer() or abs(number) >= 1e5
    return f"{number:,.0f}" if whole else f"{number:,.1f}"


@dataclass(frozen=True, slots=True)
class Row:
    metric: Metric
    values: tuple[float | None, ...]
    ratios: tuple[float | None, ...]
    """Each target's value divided by the first (baseline) target's."""


def ratio_table(reports: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """One row per headline metric any target reports; ratios are against the first target."""
    rows = []
    for metric in HEADLINE:
        values = tuple(value(report, metric) for report in reports.values())
        if all(v is None for v in values):
            continue
        base = values[0]
        ratios = tuple(
            v / base if v is not None and base not in (None, 0) else None for v in values
        )
        rows.append(Row(metric, values, ratios))
    return rows


def ratio_json(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    names = list(reports)
    return {
        "baseline": names[0],
        "targets": names,
        "metrics": {
            row.metric.label: {
                "unit": row.metric.unit,
                "higher_is_better": row.metric.higher_is_better,
                "values": dict(zip(names, row.values, strict=True)),
                "ratios": dict(zip(names, row.ratios, strict=True)),
            }
            for row in ratio_table(reports)
        },
    }
