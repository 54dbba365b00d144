from __future__ import annotations

from random import Random
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenway.config.processors import PII_KINDS, EntropyRule
from tokenway.processing.pii_candidates import SMALL
from tokenway.processing.pii_patterns import (
    Finding,
    bits_per_char,
    detectors,
    dni_valid,
    find,
    iban_valid,
    luhn_valid,
    redact,
)

from .helpers import fullwidth

TABLE = detectors(PII_KINDS, EntropyRule())


def kinds(text: str) -> list[str]:
    return [f.kind for f in find(text, TABLE)]


def found(text: str) -> list[str]:
    return [text[f.start : f.end] for f in find(text, TABLE)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("mail jane.doe+work@example.co.uk today", "email", "jane.doe+work@example.co.uk"),
        ("écrivez à jörg.müller@exämple.de svp", "email", "jörg.müller@exämple.de"),
        ("call (555) 123-4567 now", "phone", "(555) 123-4567"),
        ("call +44 20 7946 0958 now", "phone", "+44 20 7946 0958"),
        ("whatsapp +14155552671", "phone", "+14155552671"),
        ("card 4111 1111 1111 1111 exp", "credit-card", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004.", "credit-card", "5500-0000-0000-0004"),
        (
            f"wide {fullwidth('4111111111111111')} card",
            "credit-card",
            fullwidth("4111111111111111"),
        ),
        ("IBAN DE89 3704 0044 0532 0130 00 PLEASE", "iban", "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432.", "iban", "GB82WEST12345698765432"),
        ("ssn 123-45-6789", "us-ssn", "123-45-6789"),
        ("NI number AB 12 34 56 C", "uk-nino", "AB 12 34 56 C"),
        ("DNI 12345678Z", "es-dni", "12345678Z"),
        (
            "key sk-proj-Abc123def456GHI789jkl012mno",
            "api-key",
            "sk-proj-Abc123def456GHI789jkl012mno",
        ),
        ("aws AKIAIOSFODNN7EXAMPLE here", "api-key", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a1B2c3D4e5" * 4, "api-key", "ghp_" + "a1B2c3D4e5" * 4),
        ("secret=Zx9Qw2Er7Ty4Ui1Op8As5Df3Gh6Jk0LmN", "secret", "Zx9Qw2Er7Ty4Ui1Op8As5Df3Gh6Jk0LmN"),
        (
            "aws_secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "secret",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    ],
)
def test_detects(text: str, kind: str, value: str) -> None:
    assert kinds(text) == [kind]
    assert found(text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "no personal data here, just prose about the weather",
        "an @mention and user@localhost are not addresses",
        "card 4111 1111 1111 1112 fails Luhn",
        "the date 2024-01-15 and version 1.2.3",
        "server 192.168.100.200 is up",
        "order 1234567890 shipped",
        "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
        "ssn 000-12-3456 and 666-12-3456 are never issued",
        "NI number BG 12 34 56 C uses a prefix never issued",
        "DNI 12345678A has the wrong letter",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "a long word: pneumonoultramicroscopicsilicovolcanoconiosis",
        "emoji 😀 and 中文 text without numbers",
    ],
)
def test_ignores(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/api/v1/users/12345/orders/67890/items",
        "python3.12/site-packages/numpy/core/multiarray",
        "Users/JohnSmith/Documents/Project2024/notes",
        "AWS_SECRET_ACCESS_KEY_FOR_PRODUCTION_ENV_2024",
        "getUserAccountSettingsForProduction2024Handler",
        "2024-01-15 10:30:00",
        "meeting on 15.01.2024 10:30",
        "prices: 12.50 13.75 14.00",
        "totals 123.50 134.75 142.00",
        "IDs 2024 1187 5512 9981 3321 4410",
    ],
)
def test_ignores_paths_names_dates_times_and_decimals(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Call 555-123-4567 2024-01-15", "Call [phone] 2024-01-15"),
        ("My numbers: 020 7946 0958 020 7946 0959", "My numbers: [phone] [phone]"),
        ("Call +44 20 7946 0958 2024-01-15", "Call [phone] 2024-01-15"),
        ("Card: 4111 1111 1111 1111 123", "Card: [credit-card] 123"),
        ("Card: 12 4111 1111 1111 1111", "Card: 12 [credit-card]"),
        ("on 2024-01-15 555-123-4567", "on 2024-01-15 [phone]"),
        ("host 192.168.100.200 555-123-4567", "host 192.168.100.200 [phone]"),
    ],
)
def test_finds_a_number_next_to_another_group_of_digits(text: str, redacted: str) -> None:
    assert redact(text, find(text, TABLE), "[{kind}]") == redacted


def test_the_earlier_detector_wins_an_overlap_even_when_it_starts_later() -> None:
    # The digits before the SSN and its first groups look like one phone number.
    text = "Ref 2024 0130 00 123-45-6789."
    assert redact(text, find(text, TABLE), "[{kind}]") == "Ref 2024 0130 00 [us-ssn]."


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111121")
    assert iban_valid("NL91 ABNA 0417 1643 00")
    assert not iban_valid("NL91 ABNA 0417 1643 01")
    assert dni_valid("12345678Z")
    assert not dni_valid("12345678Q")
    assert bits_per_char("aaaa") == 0.0
    assert bits_per_char("abcd") == 2.0


def test_overlaps_resolve_to_one_finding_in_text_order() -> None:
    text = "a@b.io then 4111-1111-1111-1111 then a@b.io"
    assert kinds(text) == ["email", "credit-card", "email"]


def test_redact_replaces_each_finding_with_its_placeholder() -> None:
    text = "mail a@b.io or call 555-123-4567."
    assert redact(text, find(text, TABLE), "<{kind}>") == "mail <email> or call <phone>."


def test_only_configured_kinds_are_detected() -> None:
    table = detectors(["email"], EntropyRule())
    assert [f.kind for f in find("a@b.io 555-123-4567", table)] == ["email"]


def test_entropy_rule_is_configurable() -> None:
    token = "Zx9Qw2Er7Ty4Ui1Op8As5Df3"
    assert find(token, detectors(["secret"], EntropyRule())) == []
    assert find(token, detectors(["secret"], EntropyRule(min_length=20))) != []


def test_long_runs_scan_in_linear_time() -> None:
    # A backtracking pattern would take minutes on these; each must finish a single scan.
    for text in ("a" * 200_000, "1 " * 100_000, "A1" * 100_000, "a." * 100_000 + "@"):
        find(text, TABLE)


def whole_text_scan(text: str) -> list[Finding]:
    # Texts up to SMALL characters are scanned whole, without trigger windows.
    with patch("tokenway.processing.pii_candidates.SMALL", len(text)):
        return find(text, TABLE)


LONG_PARTS = [
    "jane@example.com",
    "4111 1111 1111 1111",
    fullwidth("5500000000000004"),
    "+44 20 7946 0958",
    "GB82 WEST 1234 5698 7654 32",
    "AB 12 34 56 C",
    "12345678Z",
    "123-45-6789",
    "555-123-4567 2024-01-15",
    "192.168.1.10 555-123-4567",
    "2024 0130 00 123-45-6789",
    "AKIAIOSFODNN7EXAMPLE",
    "Zx9Qw2Er7Ty4Ui1Op8As5Df3Gh6Jk0LmN",
    "version 2.0.1 of 2024",
    "réunion à 10h30",
    "中文文本",
    "the quick brown fox jumps over the lazy dog",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LONG_PARTS), min_size=20, max_size=60), st.randoms())
def test_windowed_scan_finds_exactly_what_a_whole_text_scan_finds(
    parts: list[str], rng: Random
) -> None:
    text = "".join(part + rng.choice([" ", ", ", ". ", "\n", " and "]) for part in parts)
    text += " the end of a long prompt" * (SMALL // 20)
    assert len(text) > SMALL
    assert find(text, TABLE) == whole_text_scan(text)
