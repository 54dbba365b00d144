"""Detectors of personal data and secrets: a linear-time regex plus a checksum or a test.

Every pattern has a negative lookbehind so a match can only begin at the start of a run of the
characters it is made of; with no nested quantifiers that keeps each scan linear in the text
length. Where it can, a pattern starts with its first character class and only then looks
behind, which lets the regex engine skip ahead to candidate characters (about 3x faster).
Patterns run only where their trigger is (pii_candidates): over windows joined with NUL
separators into one string, or at the only positions a match can start. Each hit is matched
again on the full text, so the windows change the cost and never the result. `tail` is the
detector's character set, used to hold back a run that a later stream chunk could complete.

A check may accept a prefix of a match (a phone number followed by a date), and a match it
rejects is tried again from its next character, so a number next to other digits is still
found. Where findings of two detectors overlap, the one earlier in the table wins.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from tokenway.config.processors import EntropyRule, PiiKind
from tokenway.processing.pii_candidates import WHOLE, Region, Scan

LOOKBEHIND = 3
"""The most characters before a match that a pattern's lookbehind reads ("12." for a phone)."""


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


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
"""Each digit doubled, with the digits of the result summed."""


def luhn_valid(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()]
    return (sum(digits[-1::-2]) + sum(_DOUBLED[d] for d in digits[-2::-2])) % 10 == 0


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
    if luhn_valid(text):
        return len(text)
    # A three-digit group after a 4-4-4-4 card (a CVV) makes it look like a 19-digit one.
    if len(text) > _GROUPED_16 and luhn_valid(text[:_GROUPED_16]):
        return _GROUPED_16
    return 0


_GROUPED_16 = len("4111 1111 1111 1111")


def _iban(text: str) -> int:
    # A following upper-case word can look like one more group: drop groups until it checks.
    while len(text) >= 15:
        if iban_valid(text):
            return len(text)
        text = text[:-4].rstrip() if " " not in text[-5:] else text.rsplit(" ", 1)[0]
    return 0


_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DATE = re.compile(
    r"(?:19|20)\d\d([.-])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?:0[1-9]|[12]\d|3[01])([.-])(?:0[1-9]|1[0-2])\2(?:19|20)\d\d(?!\d)"
)
_LEADING_CODE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?")
_ACCOUNT_LIKE = re.compile(r"\d{4}(?:[ .-]\d{4})+(?:[ .-]\d{1,3})?")
"""Groups of four digits: how cards and accounts are printed, and what follows an IBAN's code."""
_GROUP_END = re.compile(r"(?<=\d)[ .-]")


def _group_ends(number: str) -> list[int]:
    """Where a shorter number can end inside a match: at each separator after a digit."""
    return [m.start() for m in _GROUP_END.finditer(number)]


def _digits(text: str) -> int:
    return sum(map(str.isdigit, text))


def _phone_shaped(number: str) -> bool:
    if _IPV4.match(number) or _ACCOUNT_LIKE.fullmatch(number):
        return False
    # Dots between groups are a style of their own; mixed with spaces or dashes they are decimals
    # ("12.50 13.75"). The separator after a country or area code may differ.
    groups = number[_LEADING_CODE.match(number).end() :]
    return "." not in groups or (" " not in groups and "-" not in groups)


def _phone(text: str) -> int:
    international = text.startswith("+")
    low = 8 if international else 10
    digits = _digits(text)
    if digits < low or _DATE.match(text):
        return 0
    if digits <= 15 and _phone_shaped(text):
        return len(text)
    if international:
        # The country code says the number may be that long: drop groups until it fits.
        high, ends = 15, _group_ends(text)[::-1]
    else:
        # A national number has 10 or 11 digits: in a longer match the last groups are another
        # number ("555-123-4567 2024-01-15", two numbers in a row).
        high, ends = 11, _group_ends(text)
    for end in ends:
        if low <= _digits(text[:end]) <= high and _phone_shaped(text[:end]):
            return end
    return 0


_CLASS_RUN = re.compile(r"[a-z]+|[A-Z]+|\d+|[^a-zA-Z\d]+")
_PATH_PIECE = 12
"""A run whose pieces between slashes are all shorter than this is a path or URL: in base64 a
slash is one character in 64."""


def _random_looking(token: str) -> bool:
    """Whether a token looks generated rather than written: digits and both cases (names and
    paths seldom have all three), no path structure, and a change of character class at every
    third character or more often (random text changes at two in three, words and names less)."""
    varied = (
        any(ch.isdigit() for ch in token)
        and any(ch.isupper() for ch in token)
        and any(ch.islower() for ch in token)
    )
    return (
        varied
        and max(map(len, token.split("/"))) >= _PATH_PIECE
        and 3 * len(_CLASS_RUN.findall(token)) >= len(token)
    )


def _entropy(rule: EntropyRule) -> Callable[[str], int]:
    def accept(token: str) -> int:
        if _random_looking(token) and bits_per_char(token) >= rule.min_bits_per_char:
            return len(token)
        return 0

    return accept


def _near_digits(scan: Scan) -> Region | None:
    return scan.digits()


def _tail(chars: str) -> re.Pattern[str]:
    return re.compile(f"[{chars}]*")


_PHONE_GROUPS = r"(?:[ .-]\d{2,4}){1,4}(?!\w|[.:]\d)"
"""A phone number's further groups, not followed by the fraction of a time or decimal."""
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
        # Before cards: an IBAN's digit groups may pass Luhn, mod 97 is the stronger check.
        "iban": Detector(
            "iban",
            re.compile(
                r"[A-Z](?<![A-Z0-9][A-Z])[A-Z]\d{2}"
                r"(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Z0-9])"
            ),
            _tail("A-Z0-9 "),
            43,
            _iban,
            _near_digits,
        ),
        "credit-card": Detector(
            "credit-card",
            # Ungrouped, or printed as 4-4-4-4 (4-4-4-4-3), 4-6-5 (Amex) or 4-6-4 (Diners): Luhn
            # passes one run of digits in ten, so other groupings would be mostly false alarms.
            re.compile(
                r"\d(?<![\d-]\d)(?:\d{12,18}"
                r"|\d{3}([ -])(?:\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{6}\1\d{4,5}))(?!\d)"
            ),
            _tail(r"\d -"),
            23,
            _card,
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
            # The first character class, then lookbehinds to see which one it was and that it
            # does not continue a date, time or decimal ("2024-01-15", "10:30", "12.50").
            re.compile(
                r"[+(\d](?<![\w+][+(\d])(?<!\d\d[.:-][+(\d])(?:(?<=\+)\d{8,15}(?!\d)"
                r"|(?<=\+)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}" + _PHONE_GROUPS + "|"
                r"(?<=\()\d{1,4}\)[ .-]?\d{2,4}" + _PHONE_GROUPS + "|"
                r"(?<=\d)\d{1,3}" + _PHONE_GROUPS + ")"
            ),
            _tail(r"\d +().:-"),
            36,
            _phone,
            _near_digits,
        ),
    }
    wanted = set(kinds)
    return [detector for kind, detector in table.items() if kind in wanted]


def _search(
    text: str, pattern: re.Pattern[str], region: Region | list[int], position: int
) -> re.Match[str] | None:
    """The first match in text that starts at or after position."""
    if region is WHOLE:
        return pattern.search(text, position)
    if isinstance(region, list):
        for index in range(bisect_left(region, position), len(region)):
            if (match := pattern.match(text, region[index])) is not None:
                return match
        return None
    index = region.index(position)
    while (hit := pattern.search(region.joined, index)) is not None:
        if (match := pattern.match(text, region.position(hit.start()))) is not None:
            return match
        index = hit.start() + 1
    return None


def _spans(text: str, detector: Detector, scan: Scan, start: int) -> Iterator[tuple[int, int]]:
    """The detector's findings; a rejected match is retried from its next character on, so a
    number next to another group of digits is still found."""
    region = detector.region(scan)
    if region is None:
        return
    position = start
    while (match := _search(text, detector.pattern, region, position)) is not None:
        length = detector.accept(match.group())
        if length:
            yield match.start(), match.start() + length
        position = match.start() + (length or 1)


def find_all(text: str, table: Sequence[Detector], start: int = 0) -> list[Finding]:
    """Every finding that starts at or after `start`, overlapping ones included: the first
    detector's in text order, then the next detector's."""
    scan = Scan(text)
    return [
        Finding(span_start, span_end, detector.kind)
        for detector in table
        for span_start, span_end in _spans(text, detector, scan, start)
    ]


def resolve(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that overlap none before them in `findings`, in text order."""
    result: list[Finding] = []
    starts: list[int] = []
    for finding in findings:
        index = bisect_right(starts, finding.start)
        if index and result[index - 1].end > finding.start:
            continue
        if index < len(result) and result[index].start < finding.end:
            continue
        result.insert(index, finding)
        starts.insert(index, finding.start)
    return result


def find(text: str, table: Sequence[Detector]) -> list[Finding]:
    """Non-overlapping findings in text order; where findings overlap, the earlier detector in
    `table` wins, whatever their positions."""
    return resolve(find_all(text, table))


def redact(text: str, findings: Sequence[Finding], placeholder: str) -> str:
    parts = []
    position = 0
    for finding in findings:
        parts.append(text[position : finding.start])
        parts.append(placeholder.replace("{kind}", finding.kind))
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)
