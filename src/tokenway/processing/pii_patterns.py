"""Detectors of personal data and secrets: a linear-time regex plus a checksum or a test.

Every pattern has a negative lookbehind so a match can only begin at the start of a run of the
characters it is made of; with no nested quantifiers that keeps each scan linear in the text
length. Where it can, a pattern starts with its first character class and only then looks
behind, which lets the regex engine skip ahead to candidate characters (about 3x faster).
Patterns run only where their trigger is (pii_candidates): over windows joined with NUL
separators into one string, or at the only positions a match can start. Each hit is matched
again on the full text, so the windows change the cost and never the result. `tail` is the
detector's character set, used to hold back a run that a later stream chunk could complete.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from tokenway.config.processors import EntropyRule, PiiKind
from tokenway.processing.pii_candidates import WHOLE, Region, Scan


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    kind: str


@dataclass(frozen=True, slots=True)
class Detector:
    kind: PiiKind
    pattern: re.Pattern[str]
    tail: re.Pattern[str]
    """Matches a run of this detector's characters at the start of a reversed string."""
    max_len: int
    accept: Callable[[str], int]
    """The length of the valid prefix of a match (0: not a finding)."""
    region: Callable[[Scan], Region | list[int] | None]
    """Where in a text a match can be: windows around the detector's trigger, or the only
    positions where a match can start."""


def luhn_valid(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()]
    checksum = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        checksum += digit
    return checksum % 10 == 0


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rotated = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_valid(dni: str) -> bool:
    number = int(dni[:8])
    return dni[-1] == _DNI_LETTERS[number % 23]


def bits_per_char(token: str) -> float:
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _whole(valid: Callable[[str], bool]) -> Callable[[str], int]:
    return lambda text: len(text) if valid(text) else 0


def _card(text: str) -> int:
    digits = sum(ch.isdigit() for ch in text)
    return len(text) if 13 <= digits <= 19 and luhn_valid(text) else 0


def _iban(text: str) -> int:
    # A following upper-case word can look like one more group: drop groups until it checks.
    while len(text) >= 15:
        if iban_valid(text):
            return len(text)
        text = text[:-4].rstrip() if " " not in text[-5:] else text.rsplit(" ", 1)[0]
    return 0


_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def _phone(text: str) -> int:
    digits = sum(ch.isdigit() for ch in text)
    if _IPV4.match(text):
        return 0
    low = 8 if text.startswith("+") else 10
    return len(text) if low <= digits <= 15 else 0


def _entropy(rule: EntropyRule) -> Callable[[str], int]:
    def accept(token: str) -> int:
        has_digit = any(ch.isdigit() for ch in token)
        has_alpha = any(ch.isalpha() for ch in token)
        if has_digit and has_alpha and bits_per_char(token) >= rule.min_bits_per_char:
            return len(token)
        return 0

    return accept


def _near_digits(scan: Scan) -> Region | None:
    return scan.digits()


def _tail(chars: str) -> re.Pattern[str]:
    return re.compile(f"[{chars}]*")


_KEY_MIN_RUN = 16
"""Every known key format is a run of at least this many [A-Za-z0-9_-] characters."""
_KEY_PREFIXES = (
    r"sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
)


def detectors(kinds: Iterable[PiiKind], entropy: EntropyRule) -> list[Detector]:
    """The detectors of `kinds`, in priority order (earlier wins where findings overlap)."""
    secret = "A-Za-z0-9+/_-"
    table: dict[PiiKind, Detector] = {
        "api-key": Detector(
            "api-key",
            re.compile(rf"(?<![\w-])(?:{_KEY_PREFIXES})(?![\w-])"),
            _tail(r"\w-"),
            256,
            len,
            lambda scan: scan.runs(_KEY_MIN_RUN),
        ),
        "secret": Detector(
            "secret",
            re.compile(
                rf"(?<![{secret}])[{secret}]{{{entropy.min_length},}}={{0,2}}(?![={secret}])"
            ),
            _tail("=" + secret),
            512,
            _entropy(entropy),
            lambda scan: scan.runs(entropy.min_length),
        ),
        "email": Detector(
            "email",
            re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"),
            _tail(r"\w.%+@-"),
            254,
            len,
            lambda scan: scan.local_part_starts(256),
        ),
        "credit-card": Detector(
            "credit-card",
            re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)"),
            _tail(r"\d -"),
            23,
            _card,
            _near_digits,
        ),
        "iban": Detector(
            "iban",
            re.compile(
                r"[A-Z](?<![A-Z0-9][A-Z])[A-Z]\d{2}"
                r"(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Z0-9])"
            ),
            _tail("A-Z0-9 "),
            42,
            _iban,
            _near_digits,
        ),
        "us-ssn": Detector(
            "us-ssn",
            re.compile(
                r"\d(?<![\d-]\d)\d\d(?<!000)(?<!666)(?<!9\d\d)-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"
            ),
            _tail(r"\d-"),
            11,
            len,
            _near_digits,
        ),
        "uk-nino": Detector(
            "uk-nino",
            re.compile(
                r"[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9][A-Z])[A-CEGHJ-NPR-TW-Z](?<!BG|GB|KN|NK|NT|TN|ZZ)"
                r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
            ),
            _tail("A-Z0-9 "),
            13,
            len,
            _near_digits,
        ),
        "es-dni": Detector(
            "es-dni",
            re.compile(r"\d(?<![A-Za-z0-9]\d)\d{7}-?[A-Z](?![A-Za-z0-9])"),
            _tail("A-Z0-9-"),
            10,
            _whole(lambda text: dni_valid(text.replace("-", ""))),
            _near_digits,
        ),
        "phone": Detector(
            "phone",
            # The first character class, then a lookbehind to see which one it was.
            re.compile(
                r"[+(\d](?<![\w+][+(\d])(?:(?<=\+)\d{8,15}(?!\d)"
                r"|(?<=\+)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w)"
                r"|(?<=\()\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w)"
                r"|(?<=\d)\d{1,3}(?:[ .-]\d{2,4}){1,4}(?!\w))"
            ),
            _tail(r"\d +().-"),
            24,
            _phone,
            _near_digits,
        ),
    }
    wanted = set(kinds)
    return [detector for kind, detector in table.items() if kind in wanted]


def _matches(text: str, detector: Detector, scan: Scan) -> Iterator[re.Match[str]]:
    region = detector.region(scan)
    if region is None:
        return
    if region is WHOLE:
        yield from detector.pattern.finditer(text)
        return
    if isinstance(region, list):
        for start in region:
            if (match := detector.pattern.match(text, start)) is not None:
                yield match
        return
    for hit in detector.pattern.finditer(region.joined):
        match = detector.pattern.match(text, region.position(hit.start()))
        if match is not None:
            yield match


def find(text: str, table: Sequence[Detector]) -> list[Finding]:
    """Non-overlapping findings in text order; the earlier detector wins an overlap."""
    scan = Scan(text)
    found: list[tuple[int, int, int, str]] = []
    for rank, detector in enumerate(table):
        for match in _matches(text, detector, scan):
            length = detector.accept(match.group())
            if length:
                found.append((match.start(), rank, match.start() + length, detector.kind))
    found.sort()
    result: list[Finding] = []
    taken_until = 0
    for start, _rank, end, kind in found:
        if start >= taken_until:
            result.append(Finding(start, end, kind))
            taken_until = end
    return result


def redact(text: str, findings: Sequence[Finding], placeholder: str) -> str:
    parts = []
    position = 0
    for finding in findings:
        parts.append(text[position : finding.start])
        parts.append(placeholder.replace("{kind}", finding.kind))
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)
