from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tokenway.datalayer.exposition import ExpositionReader, Sample, mean, total


def test_reads_only_the_wanted_names_and_not_longer_names_sharing_a_prefix() -> None:
    text = (
        "# HELP vllm:num_requests_waiting Waiting.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{model_name="m"} 3.0\n'
        'vllm:num_requests_waiting_by_reason{reason="capacity"} 7.0\n'
        "vllm:num_requests_running 2\n"
    )
    found = ExpositionReader(["vllm:num_requests_waiting"]).read(text)
    assert found == {"vllm:num_requests_waiting": [Sample({"model_name": "m"}, 3.0)]}


def test_first_line_timestamps_and_special_values() -> None:
    text = "a_total 1 1700000000000\na_gauge NaN\na_max +Inf\n"
    found = ExpositionReader(["a_total", "a_gauge", "a_max"]).read(text)
    assert found["a_total"] == [Sample({}, 1.0)]
    assert math.isnan(found["a_gauge"][0].value)
    assert found["a_max"] == [Sample({}, math.inf)]


def test_label_values_with_escapes_commas_and_braces() -> None:
    text = 'x{a="q\\"uo}te",b="back\\\\slash",c="new\\nline",d="p,q"} 4\n'
    (sample,) = ExpositionReader(["x"]).read(text)["x"]
    assert sample.labels == {"a": 'q"uo}te', "b": "back\\slash", "c": "new\nline", "d": "p,q"}


def test_a_wanted_name_with_a_broken_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="x has a non-numeric value"):
        ExpositionReader(["x"]).read("x{} twelve\n")


def test_text_that_is_not_exposition_yields_nothing() -> None:
    assert ExpositionReader(["x"]).read("<html><body>x 1</body></html>") == {}


def test_aggregates() -> None:
    samples = [Sample({}, 1.0), Sample({}, 3.0)]
    assert total(samples) == 4.0
    assert mean(samples) == 2.0
    assert mean([]) == 0.0


_label_value = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@given(
    st.lists(
        st.tuples(_label_value, _label_value, st.floats(allow_nan=False, width=32)),
        min_size=1,
        max_size=6,
        unique_by=lambda row: (row[0], row[1]),
    )
)
def test_agrees_with_prometheus_client_on_what_prometheus_client_writes(
    rows: list[tuple[str, str, float]],
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("srv:load", "Load.", ["model_name", "adapters"], registry=registry)
    Gauge("srv:load_other", "Shares the prefix.", registry=registry).set(99)
    for model, adapters, value in rows:
        gauge.labels(model_name=model, adapters=adapters).set(value)
    text = generate_latest(registry).decode()

    ours = ExpositionReader(["srv:load"]).read(text)["srv:load"]
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "srv:load"]
    assert [(dict(s.labels), s.value) for s in ours] == [
        (s.labels, s.value) for s in family.samples
    ]


def test_blanks_before_names_and_labels_are_read_like_prometheus_client() -> None:
    text = '  vllm:num_requests_waiting 2\nvllm:num_requests_running {model_name="m"} 3\n'
    found = ExpositionReader(["vllm:num_requests_waiting", "vllm:num_requests_running"]).read(text)
    assert found["vllm:num_requests_waiting"][0].value == 2
    assert found["vllm:num_requests_running"] == [Sample({"model_name": "m"}, 3.0)]


def test_non_finite_series_count_as_nothing_in_totals() -> None:
    samples = [Sample({}, math.nan), Sample({}, math.inf), Sample({}, 4.0)]
    assert total(samples) == 4.0
