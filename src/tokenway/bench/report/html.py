"""A self-contained HTML report: headline tables, per-stage tables and inlined PNG plots."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tokenway.bench.headline import Metric, format_value, ratio_table, value
from tokenway.bench.report.lifecycle import TargetReports

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
td{text-align:right}th{background:#f3f3f3}td.name{text-align:left}
.better{color:#17702a}.worse{color:#a31515}img{max-width:100%}
"""

_STAGE_COLUMNS = (
    ("requested", ("load_summary", "requested_rate")),
    ("concurrency", ("load_summary", "concurrency")),
    ("achieved", ("load_summary", "achieved_rate")),
    ("ok", ("successes", "count")),
    ("failed", ("failures", "count")),
    ("req/s", ("successes", "throughput", "requests_per_sec")),
    ("out tok/s", ("successes", "throughput", "output_tokens_per_sec")),
    ("TTFT p50 ms", ("successes", "latency", "time_to_first_token", "median")),
    ("TTFT p90 ms", ("successes", "latency", "time_to_first_token", "p90")),
    ("TPOT p50 ms", ("successes", "latency", "time_per_output_token", "median")),
    ("latency p90 ms", ("successes", "latency", "request_latency", "p90")),
    ("lag p99 ms", ("load_summary", "schedule_delay", "p99")),
)


def _ratio_cell(ratio: float | None, metric: Metric) -> str:
    if ratio is None:
        return "<td>-</td>"
    better = (ratio > 1) == metric.higher_is_better and abs(ratio - 1) > 0.02
    worse = (ratio < 1) == metric.higher_is_better and abs(ratio - 1) > 0.02
    css = ' class="better"' if better else ' class="worse"' if worse else ""
    return f"<td{css}>{ratio:.2f}x</td>"


def _headline_table(reports: Sequence[TargetReports]) -> str:
    summaries = {r.name: r.summary for r in reports if r.summary is not None}
    if not summaries:
        return "<p>No measured requests.</p>"
    names = list(summaries)
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    if len(names) > 1:
        head += "".join(f"<th>{escape(n)} / {escape(names[0])}</th>" for n in names[1:])
    rows = []
    for row in ratio_table(summaries):
        cells = "".join(f"<td>{format_value(v, row.metric.unit)}</td>" for v in row.values)
        cells += "".join(_ratio_cell(r, row.metric) for r in row.ratios[1:])
        rows.append(f'<tr><td class="name">{escape(row.metric.label)}</td>{cells}</tr>')
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _stage_table(report: TargetReports) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for label, _ in _STAGE_COLUMNS)
    rows = []
    for index, stage in sorted(report.stages.items()):
        cells = []
        for label, path in _STAGE_COLUMNS:
            number = value(stage, Metric(label, path, True, ""))
            shown = (
                "-"
                if number is None
                else f"{number * 1000:.1f}"
                if label.endswith("ms")
                else format_value(number, "")
            )
            cells.append(f"<td>{shown}</td>")
        rows.append(f'<tr><td class="name">{index}</td>{"".join(cells)}</tr>')
    return f"<table><tr><th>stage</th>{head}</tr>{''.join(rows)}</table>"


def render(
    title: str,
    facts: Mapping[str, Any],
    reports: Sequence[TargetReports],
    plots: Mapping[str, bytes],
    notes: Sequence[str] = (),
) -> str:
    """The whole page as one string; images are data: URIs so the file travels alone."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>",
        "<table>",
        *(
            f'<tr><th>{escape(str(k))}</th><td class="name">{escape(str(v))}</td></tr>'
            for k, v in facts.items()
        ),
        "</table>",
        *(f"<p>{escape(note)}</p>" for note in notes),
        "<h2>Summary</h2>",
        _headline_table(reports),
    ]
    for report in reports:
        parts += [f"<h2>Stages: {escape(report.name)}</h2>", _stage_table(report)]
    for caption, png in plots.items():
        encoded = base64.b64encode(png).decode()
        parts += [
            f"<h2>{escape(caption)}</h2>",
            f'<img alt="{escape(caption)}" src="data:image/png;base64,{encoded}">',
        ]
    parts.append(
        "<p>Metric definitions follow inference-perf: TTFT from send to first token, TPOT = "
        "(last token - first token) / (output tokens - 1), ITL between consecutive chunks, "
        "schedule delay = actual send - intended send.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
