"""Semantic routing accuracy on a labelled set of 250 prompts in 5 categories.

The routes (benchmarks/data/semantic_routes.yaml) give 15 example utterances and a few keywords
per category; the 250 test prompts (benchmarks/data/semantic_routing_prompts.jsonl, 50 per
category, written for this benchmark) share no text with the examples. Four routers run on the
same prompts: the configured one (keywords, then the n-gram classifier), the classifier alone,
the keywords alone (default route when no keyword hits), and the in-run baseline that sends
everything to the default route. It reports accuracy, per-category precision and recall, the
confusion matrix of the configured router, a threshold sweep, the time to train at load, and
the classification time per prompt.

    .venv/bin/python benchmarks/semantic_routing_accuracy.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import yaml

from tokenway.bench.stats import distribution
from tokenway.config.processors import SemanticRouterSpec
from tokenway.processing.semantic_router import SemanticRouter

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "semantic_routing_accuracy.json"
PLOT = HERE / "results" / "semantic_routing_confusion.png"
THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


def variant(raw: dict[str, Any], keywords: bool, examples: bool) -> dict[str, Any]:
    routes = []
    for route in raw["routes"]:
        kept = dict(route)
        if not keywords:
            kept.pop("keywords", None)
        if not examples:
            kept.pop("examples", None)
        routes.append(kept)
    return {**raw, "routes": routes}


def evaluate(router: SemanticRouter, rows: list[dict[str, str]]) -> tuple[list[str], list[float]]:
    predicted, seconds = [], []
    for row in rows:
        start = time.perf_counter()
        predicted.append(router.choose(row["prompt"]).model)
        seconds.append(time.perf_counter() - start)
    return predicted, seconds


def confusion(labels: list[str], truth: list[str], predicted: list[str]) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix.tolist()


def per_class(labels: list[str], matrix: list[list[int]]) -> dict[str, dict[str, float]]:
    m = np.array(matrix)
    out = {}
    for i, label in enumerate(labels):
        predicted, actual = m[:, i].sum(), m[i, :].sum()
        out[label] = {
            "precision": round(float(m[i, i] / predicted), 3) if predicted else 0.0,
            "recall": round(float(m[i, i] / actual), 3) if actual else 0.0,
        }
    return out


def accuracy(truth: list[str], predicted: list[str]) -> float:
    return round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 3)


def main() -> None:
    raw = yaml.safe_load((HERE / "data" / "semantic_routes.yaml").read_text())["processors"][0]
    rows = [json.loads(line) for line in (HERE / "data" / "semantic_routing_prompts.jsonl").open()]
    truth = [row["label"] for row in rows]
    labels = [route["model"] for route in raw["routes"]]
    default = next(route["model"] for route in raw["routes"] if route.get("default"))
    start = time.perf_counter()
    configured = SemanticRouter(SemanticRouterSpec.model_validate(raw))
    train_ms = (time.perf_counter() - start) * 1000
    routers = {
        "keywords+classifier (configured)": configured,
        "classifier only": SemanticRouter(
            SemanticRouterSpec.model_validate(variant(raw, keywords=False, examples=True))
        ),
        "keywords only": SemanticRouter(
            SemanticRouterSpec.model_validate(variant(raw, keywords=True, examples=False))
        ),
    }
    results: dict[str, Any] = {
        "prompts": len(rows),
        "categories": labels,
        "examples_per_category": {r["model"]: len(r.get("examples", [])) for r in raw["routes"]},
        "train_ms": round(train_ms, 2),
        "baseline_default_route_accuracy": accuracy(truth, [default] * len(rows)),
        "routers": {},
    }
    predictions: dict[str, list[str]] = {}
    for name, router in routers.items():
        predicted, seconds = evaluate(router, rows)
        predictions[name] = predicted
        results["routers"][name] = {
            "accuracy": accuracy(truth, predicted),
            "classify_ms": distribution([s * 1000 for s in seconds]),
        }
    matrix = confusion(labels, truth, predictions["keywords+classifier (configured)"])
    results["confusion"] = {"labels": labels, "rows_true_columns_predicted": matrix}
    results["per_category"] = per_class(labels, matrix)
    results["threshold_sweep"] = {
        str(threshold): accuracy(
            truth,
            evaluate(
                SemanticRouter(SemanticRouterSpec.model_validate({**raw, "threshold": threshold})),
                rows,
            )[0],
        )
        for threshold in THRESHOLDS
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    plot(labels, matrix, results["routers"]["keywords+classifier (configured)"]["accuracy"])
    print(f"{len(rows)} prompts, {len(labels)} categories, trained in {train_ms:.1f} ms")
    print(f"  baseline (all to default '{default}'): {results['baseline_default_route_accuracy']}")
    for name, values in results["routers"].items():
        print(f"  {name:34} accuracy {values['accuracy']:.3f}")
    print("  threshold sweep (configured):", results["threshold_sweep"])
    print("confusion (rows: true, columns: predicted):", labels)
    for label, row in zip(labels, matrix, strict=True):
        print(f"  {label:10} {row}")
    print(f"wrote {RESULTS} and {PLOT}")


def plot(labels: list[str], matrix: list[list[int]], acc: float) -> None:
    figure, axis = plt.subplots(figsize=(6, 5))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted route")
    axis.set_ylabel("true category")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            axis.text(j, i, str(value), ha="center", va="center")
    axis.set_title(f"Semantic router confusion (accuracy {acc:.1%})")
    figure.colorbar(image)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


if __name__ == "__main__":
    main()
