from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenway.config.processors import PII_KINDS, EntropyRule
from tokenway.processing.pii_patterns import Finding, detectors, find, redact
from tokenway.processing.pii_stream import StreamRedactor

TABLE = detectors(PII_KINDS, EntropyRule())
FRAGMENTS = [
    "jane@example.com",
    "jörg.müller@exämple.de",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "AB 12 34 56 C",
    "12345678Z",
    "sk-proj-Abc123def456GHI789jkl012mno",
    "Zx9Qw2Er7Ty4Ui1Op8As5Df3Gh6Jk0LmN",
    "hello",
    "world",
    "2024",
    "中文",
    "😀",
    "naïve",
    "-",
]
SEPARATORS = [" and ", ", ", ". ", "; ", "\n", " — ", "\t"]


def stream(text: str, cuts: list[int], placeholder: str = "[{kind}]") -> list[str]:
    redactor = StreamRedactor(TABLE, placeholder, lambda findings: None)
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    out = [redactor.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    return [*out, redactor.finish()]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(SEPARATORS)), min_size=1, max_size=10
    ),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_stream_equals_whole_text_redaction_for_any_split(
    parts: list[tuple[str, str]], cuts: list[int]
) -> None:
    text = "".join(fragment + separator for fragment, separator in parts)
    whole = redact(text, find(text, TABLE), "[{kind}]")
    pieces = stream(text, cuts)
    assert "".join(pieces) == whole


def stream_in_chunks(text: str, sizes: list[int]) -> str:
    redactor = StreamRedactor(TABLE, "[{kind}]", lambda findings: None)
    out, position = [], 0
    for size in itertools.cycle(sizes):
        if position >= len(text):
            break
        out.append(redactor.feed(text[position : position + size]))
        position += size
    return "".join(out) + redactor.finish()


@pytest.mark.parametrize("size", range(1, 9))
def test_a_finding_after_a_long_digit_run_is_redacted_in_any_chunk_size(size: int) -> None:
    # A match that starts in the released text must not win an overlap and hide the SSN.
    text = "IDs 2024 1187 5512 9981 3321 4410 7781 1290 5501 123-45-6789 done"
    assert stream_in_chunks(text, [size]) == redact(text, find(text, TABLE), "[{kind}]")
    assert "6789" not in stream_in_chunks(text, [size])


PII_ISH = [
    "2024",
    "1187",
    "00",
    "123-45-6789",
    "555-123-4567",
    "020 7946 0958",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "(555) 123",
    "12.50",
    "10:30",
    "192.168.1.10",
    "DE89",
    "AB 12 34 56 C",
    "12345678Z",
    "a@b.io",
    "Zx9Qw2Er7Ty4Ui1Op8As5Df3Gh6Jk0LmN",
    "x",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PII_ISH), st.sampled_from(["", " ", "-", ".", ", "])),
        min_size=1,
        max_size=16,
    ),
    st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6),
)
def test_streaming_redacts_everything_whole_text_redaction_does(
    parts: list[tuple[str, str]], sizes: list[int]
) -> None:
    text = "".join(fragment + separator for fragment, separator in parts)
    findings = find(text, TABLE)
    whole = redact(text, findings, "[{kind}]")
    streamed = stream_in_chunks(text, sizes)
    for finding in findings:
        value = text[finding.start : finding.end]
        assert streamed.count(value) <= whole.count(value), (value, streamed)


def test_long_digit_runs_do_not_leak_a_card() -> None:
    text = " ".join(["4111 1111 1111 1111"] * 6)
    for cut in range(0, len(text), 7):
        assert "4111 1111 1111 1111" not in "".join(stream(text, [cut]))


@pytest.mark.parametrize(
    "secret",
    ["jane@example.com", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "123-45-6789"],
)
def test_no_released_prefix_contains_a_split_secret(secret: str) -> None:
    text = f"before {secret} after"
    for cut in range(1, len(text)):
        released = ""
        redactor = StreamRedactor(TABLE, "[x]", lambda findings: None)
        for chunk in (text[:cut], text[cut:]):
            released += redactor.feed(chunk)
            # Not even a piece of the secret (its first 4 characters) leaves before redaction.
            assert secret[:4] not in released.replace("before", "")
        released += redactor.finish()
        assert released == "before [x] after"


def test_holds_back_only_the_unfinished_run() -> None:
    redactor = StreamRedactor(TABLE, "[{kind}]", lambda findings: None)
    assert redactor.feed("The answer is ready. Call me") == "The answer is ready. Call "
    assert redactor.feed(" at 555-12") == "me at"
    assert redactor.feed("3-4567 please") == " [phone] "
    assert redactor.finish() == "please"


def test_unicode_split_inside_multibyte_text() -> None:
    text = "连接 😀 jörg@exämple.de 😀 完"
    for cut in range(len(text) + 1):
        assert "".join(stream(text, [cut])) == "连接 😀 [email] 😀 完"


def test_findings_are_reported_once_when_final() -> None:
    seen: list[list[Finding]] = []
    redactor = StreamRedactor(TABLE, "[{kind}]", seen.append)
    for chunk in ("mail a@b", ".io and c@d.io", " bye"):
        redactor.feed(chunk)
    redactor.finish()
    assert [f.kind for batch in seen for f in batch] == ["email", "email"]


def test_a_raising_callback_stops_release() -> None:
    def refuse(findings: list[Finding]) -> None:
        raise RuntimeError("refused")

    redactor = StreamRedactor(TABLE, "[{kind}]", refuse)
    assert redactor.feed("call 555-123") == "call"
    with pytest.raises(RuntimeError):
        redactor.feed("-4567 now")
