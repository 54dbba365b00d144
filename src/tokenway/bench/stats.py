"""Request records -> the inference-perf lifecycle-metrics report (same keys, same percentiles)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenway.bench.record import RequestRecord

PERCENTILES = (0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


@dataclass(frozen=True, slots=True)
class Slo:
    """Goodput constraints in seconds; a request is good when it meets every one that is set."""

    ttft: float | None = None
    tpot: float | None = None
    itl: float | None = None
    ntpot: float | None = None
    request_latency: float | None = None

    @property
    def constraints(self) -> dict[str, float]:
        names = ("ttft", "tpot", "itl", "ntpot", "request_latency")
        return {name: value for name in names if (value := getattr(self, name)) is not None}


def distribution(
    values: Sequence[float], percentiles: Sequence[float] = PERCENTILES
) -> dict[str, float] | None:
    """mean, min, max and each percentile (p50 is named median); None without values."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    result = {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max())}
    for percentile, value in zip(percentiles, np.percentile(array, percentiles), strict=True):
        result["median" if percentile == 50 else f"p{percentile:g}"] = float(value)
    return result


def _span(records: Sequence[RequestRecord]) -> float:
    return max(r.end for r in records) - min(r.start for r in records)


def _request_itl(record: RequestRecord) -> float | None:
    itls = record.itls
    return sum(itls) / len(itls) if itls else None


def goodput(records: Sequence[RequestRecord], slo: Slo, total_time: float) -> dict[str, Any]:
    """Share and rate of successful requests that meet every SLO constraint."""
    constraints = slo.constraints
    met: Counter[str] = Counter()
    good = good_tokens = 0
    for record in records:
        values = {
            "ttft": record.ttft,
            "tpot": record.tpot,
            "itl": _request_itl(record),
            "ntpot": record.ntpot,
            "request_latency": record.latency,
        }
        passed = [
            name
            for name, limit in constraints.items()
            if (v := values[name]) is not None and v <= limit
        ]
        met.update(passed)
        if len(passed) == len(constraints):
            good += 1
            good_tokens += record.input_tokens + record.output_tokens
    total = len(records)
    result: dict[str, Any] = {
        "goodput_percentage": good / total * 100 if total else 0.0,
        "request_goodput": good / total_time if total_time > 0 else 0.0,
        "token_goodput": good_tokens / total_time if total_time > 0 else 0.0,
        "good_requests": good,
        "total_requests": total,
    }
    for name in constraints:
        result[f"{name}_attainment_percentage"] = met[name] / total * 100 if total else 0.0
    return result


def _prompt_tokens(
    records: Sequence[RequestRecord], percentiles: Sequence[float]
) -> dict[str, Any]:
    total = sum(r.input_tokens for r in records)
    cached = sum(r.cached_tokens for r in records)
    spread = distribution([r.input_tokens for r in records], percentiles) or {}
    return {"total": total, "cached": cached, "uncached": total - cached, **spread}


def _by_label(failures: Sequence[RequestRecord]) -> dict[str, Any]:
    counts = Counter(r.error or "" for r in failures)
    messages: dict[str, list[str]] = {}
    for record in failures:
        seen = messages.setdefault(record.error or "", [])
        if record.error_message and record.error_message not in seen and len(seen) < 5:
            seen.append(record.error_message)
    return {
        label: {"count": count, "messages": [{"message": m} for m in messages[label]]}
        for label, count in counts.most_common()
    }


def lifecycle_metrics(
    records: Sequence[RequestRecord],
    *,
    requested_rate: float | None = None,
    concurrency: int | None = None,
    slo: Slo | None = None,
    total_time: float | None = None,
    percentiles: Sequence[float] = PERCENTILES,
) -> dict[str, Any]:
    """One lifecycle-metrics report over `records` (a stage, or all stages for the summary).

    `total_time` overrides the first-start-to-last-end span that throughput divides by, for
    reports whose records come from several separated time windows (interleaved comparisons).
    """
    if not records:
        raise ValueError("a lifecycle report needs at least one request")
    successes = [r for r in records if r.ok]
    failures = [r for r in records if not r.ok]
    elapsed = _span(records) if total_time is None else total_time
    starts = [r.start for r in records]
    load: dict[str, Any] = {
        "count": len(records),
        "schedule_delay": distribution([r.schedule_delay for r in records], percentiles),
    }
    if requested_rate is not None:
        send_duration = max(starts) - min(starts)
        load.update(
            send_duration=send_duration,
            requested_rate=requested_rate,
            achieved_rate=len(records) / send_duration if send_duration > 0 else 0.0,
        )
    if concurrency is not None:
        load["concurrency"] = concurrency

    def per_sec(amount: float) -> float:
        return amount / elapsed if elapsed > 0 else 0.0

    input_tokens = sum(r.input_tokens for r in successes)
    output_tokens = sum(r.output_tokens for r in successes)
    success_report: dict[str, Any] = {
        "count": len(successes),
        "latency": {
            "request_latency": distribution([r.latency for r in successes], percentiles),
            "normalized_time_per_output_token": distribution(
                [r.ntpot for r in successes], percentiles
            ),
            "time_per_output_token": distribution(
                [t for r in successes if (t := r.tpot) is not None], percentiles
            ),
            "time_to_first_token": distribution(
                [t for r in successes if (t := r.ttft) is not None], percentiles
            ),
            "inter_token_latency": distribution(
                [itl for r in successes for itl in r.itls], percentiles
            ),
        },
        "throughput": {
            "input_tokens_per_sec": per_sec(input_tokens),
            "output_tokens_per_sec": per_sec(output_tokens),
            "total_tokens_per_sec": per_sec(input_tokens + output_tokens),
            "requests_per_sec": per_sec(len(successes)),
        },
        "prompt_len": distribution([r.input_tokens for r in successes], percentiles),
        "output_len": distribution([r.output_tokens for r in successes], percentiles),
        "prompt_tokens": _prompt_tokens(successes, percentiles),
        "output_tokens": {
            "total": output_tokens,
            **(distribution([r.output_tokens for r in successes], percentiles) or {}),
        },
    }
    if slo is not None and slo.constraints:
        success_report["goodput_metrics"] = goodput(successes, slo, elapsed)
    return {
        "benchmark_time_seconds": elapsed,
        "load_summary": load,
        "successes": success_report,
        "failures": {
            "count": len(failures),
            "request_latency": distribution([r.latency for r in failures], percentiles),
            "prompt_len": distribution([r.input_tokens for r in failures], percentiles),
            "prompt_tokens": _prompt_tokens(failures, percentiles),
            "by_label": _by_label(failures),
        },
    }
