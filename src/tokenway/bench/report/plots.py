"""PNG plots of one or several targets, overlaid: latency CDFs, load curves, TTFT over time.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot), so plotting
touches no process-wide state and works without a display.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tokenway.bench.load import RateStage
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.report.lifecycle import TargetReports
from tokenway.bench.runner import TargetRun


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _sent(run: TargetRun) -> list[RequestRecord]:
    """Every request of the measured stages, failed ones included (warm-up left out)."""
    return [r for r in run.records if r.stage != WARMUP_STAGE]


def _measured(run: TargetRun) -> list[RequestRecord]:
    return [r for r in _sent(run) if r.ok]


def latency_cdfs(runs: Sequence[TargetRun]) -> bytes:
    """Empirical CDFs of TTFT, TPOT, ITL and request latency, one line per target."""
    figure = Figure(figsize=(11, 7))
    axes = figure.subplots(2, 2)
    panels = (
        ("time to first token", lambda rs: [t for r in rs if (t := r.ttft) is not None]),
        ("time per output token", lambda rs: [t for r in rs if (t := r.tpot) is not None]),
        ("inter-token latency", lambda rs: [i for r in rs for i in r.itls]),
        ("request latency", lambda rs: [r.latency for r in rs]),
    )
    for ax, (title, pick) in zip(axes.flat, panels, strict=True):
        for run in runs:
            values = np.sort(np.asarray(pick(_measured(run)), dtype=float)) * 1000
            if values.size:
                ax.plot(values, np.arange(1, values.size + 1) / values.size, label=run.name)
        ax.set_title(title)
        ax.set_xlabel("ms")
        ax.set_ylabel("share of requests")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def _level(run: TargetRun, index: int) -> float:
    stage = run.stages[index]
    return stage.rate if isinstance(stage, RateStage) else float(stage.concurrency)


def load_curves(runs: Sequence[TargetRun], reports: Sequence[TargetReports]) -> bytes:
    """Achieved throughput and p50/p90 latencies against the requested load of each stage."""
    figure = Figure(figsize=(11, 4))
    throughput_ax, latency_ax = figure.subplots(1, 2)
    rate_based = any(isinstance(s, RateStage) for run in runs for s in run.stages)
    for run, report in zip(runs, reports, strict=True):
        indices = sorted(report.stages)
        levels = [_level(run, i) for i in indices]
        stages = [report.stages[i] for i in indices]
        throughput_ax.plot(
            levels,
            [s["successes"]["throughput"]["requests_per_sec"] for s in stages],
            marker="o",
            label=run.name,
        )
        for key, label, style in (
            ("time_to_first_token", "TTFT", "-"),
            ("request_latency", "latency", "--"),
        ):
            for stat in ("median", "p90"):
                latency_ax.plot(
                    levels,
                    [
                        1000 * ((s["successes"]["latency"][key] or {}).get(stat, np.nan))
                        for s in stages
                    ],
                    style,
                    marker="o",
                    label=f"{run.name} {label} {stat}",
                )
    x_label = "requested rate (req/s)" if rate_based else "concurrency"
    throughput_ax.set(title="achieved throughput", xlabel=x_label, ylabel="requests/s")
    latency_ax.set(title="latency vs load", xlabel=x_label, ylabel="ms")
    for ax in (throughput_ax, latency_ax):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    figure.tight_layout()
    return _png(figure)


def ttft_over_time(runs: Sequence[TargetRun]) -> bytes:
    """TTFT of each request at its send time, and the client's scheduling lag underneath."""
    return _png(ttft_figure(runs))


def ttft_figure(runs: Sequence[TargetRun]) -> Figure:
    figure = Figure(figsize=(11, 6))
    ttft_ax, lag_ax = figure.subplots(2, 1, sharex=True)
    for run in runs:
        measured = _measured(run)
        timed = [(r.start, r.ttft) for r in measured if r.ttft is not None]
        if timed:
            starts, ttfts = zip(*timed, strict=True)
            ttft_ax.scatter(starts, np.asarray(ttfts) * 1000, s=3, alpha=0.5, label=run.name)
        sent = _sent(run)
        lag_ax.scatter(
            [r.start for r in sent],
            [1000 * r.schedule_delay for r in sent],
            s=3,
            alpha=0.5,
            label=run.name,
        )
    ttft_ax.set(title="time to first token over the run", ylabel="ms")
    lag_ax.set(title="client scheduling lag", xlabel="seconds since start", ylabel="ms")
    for ax in (ttft_ax, lag_ax):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8, markerscale=4)
    figure.tight_layout()
    return figure
