"""Which devices of ResourceSlices a DRA CEL selector matches, evaluated as the scheduler would.

Devices are presented to CEL the way Kubernetes does: `device.driver`, `device.attributes[domain]`
and `device.capacity[domain]` (unqualified names belong to the driver's domain), quantities and
versions as opaque values that only their methods compare (`compareTo`, `isGreaterThan`,
`isLessThan`), and a domain the device does not publish as an empty map. Used to explain and to
test the selectors `tokenway render` writes; the allocator's search is not reproduced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import cel

_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)
_SUFFIX = {
    None: Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{
        s: Fraction(2 ** (10 * (i + 1))) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
    },
}
_DOMAIN_LOOKUP = re.compile(r"""\.(?:attributes|capacity)\[\s*["']([^"']+)["']\s*\]""")
QUANTITY_KEY = "__quantity__"
SEMVER_KEY = "__semver__"


def parse_quantity(text: str) -> Fraction:
    """A Kubernetes resource quantity ("80Gi", "500m", "1e3") as an exact number."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, exponent, suffix = match.groups()
    value = Fraction(number) * _SUFFIX[suffix]
    return value * Fraction(10) ** int(exponent[1:]) if exponent else value


def _quantity(text: str) -> dict[str, str]:
    return {QUANTITY_KEY: str(parse_quantity(text))}


def _semver(text: str) -> dict[str, str]:
    if not re.match(r"^\d+\.\d+\.\d+(?:[-+].*)?$", text):
        raise ValueError(f"{text!r} is not a semantic version")
    return {SEMVER_KEY: text}


def _ordered(value: Mapping[str, str]) -> tuple[Any, ...]:
    if QUANTITY_KEY in value:
        return (Fraction(value[QUANTITY_KEY]),)
    core = re.split(r"[-+]", value[SEMVER_KEY])[0]
    return tuple(int(part) for part in core.split("."))


def _compare(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    if set(a) != set(b):
        raise TypeError("compareTo needs two quantities or two versions")
    left, right = _ordered(a), _ordered(b)
    return (left > right) - (left < right)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "semver": _semver,
    "compareTo": _compare,
    "isGreaterThan": lambda a, b: _compare(a, b) > 0,
    "isLessThan": lambda a, b: _compare(a, b) < 0,
}


@dataclass(frozen=True, slots=True)
class Device:
    """One device published in a ResourceSlice."""

    driver: str
    pool: str
    node: str | None
    name: str
    attributes: Mapping[str, Mapping[str, Any]]
    capacity: Mapping[str, Mapping[str, Any]]

    def as_cel(self, domains: Iterable[str] = ()) -> dict[str, Any]:
        empty: dict[str, dict[str, Any]] = {d: {} for d in domains}
        return {
            "driver": self.driver,
            "attributes": {**empty, **{d: dict(v) for d, v in self.attributes.items()}},
            "capacity": {**empty, **{d: dict(v) for d, v in self.capacity.items()}},
        }


def _split(driver: str, name: str) -> tuple[str, str]:
    domain, _, short = name.rpartition("/")
    return (domain, short) if domain else (driver, name)


def _attribute_value(typed: Mapping[str, Any]) -> Any:
    ((kind, value),) = typed.items()
    return _semver(str(value)) if kind == "version" else value


def devices(slices: Iterable[Mapping[str, Any]]) -> list[Device]:
    """Every device of the ResourceSlices, in the order they are published."""
    found = []
    for item in slices:
        spec = item["spec"]
        driver = spec["driver"]
        for device in spec.get("devices", []):
            attributes: dict[str, dict[str, Any]] = {}
            for name, typed in (device.get("attributes") or {}).items():
                domain, short = _split(driver, name)
                attributes.setdefault(domain, {})[short] = _attribute_value(typed)
            capacity: dict[str, dict[str, Any]] = {}
            for name, amount in (device.get("capacity") or {}).items():
                domain, short = _split(driver, name)
                capacity.setdefault(domain, {})[short] = _quantity(str(amount["value"]))
            found.append(
                Device(driver, spec["pool"]["name"], spec.get("nodeName"), device["name"],
                       attributes, capacity)
            )  # fmt: skip
    return found


class SelectorError(ValueError):
    """A selector failed on a device: Kubernetes aborts the allocation attempt on such errors."""


def matches(expressions: Sequence[str], device: Device) -> bool:
    """True when every selector is true for the device (a DeviceClass's and a request's)."""
    for expression in expressions:
        context = cel.Context(functions=FUNCTIONS)
        context.add_variable("device", device.as_cel(_DOMAIN_LOOKUP.findall(expression)))
        try:
            result = cel.evaluate(expression, context)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise SelectorError(f"{expression}: on device {device.name}: {exc}") from None
        if not isinstance(result, bool):
            raise SelectorError(f"{expression}: returned {result!r}, not a bool")
        if not result:
            return False
    return True


def select(expressions: Sequence[str], candidates: Iterable[Device]) -> list[Device]:
    return [device for device in candidates if matches(expressions, device)]
