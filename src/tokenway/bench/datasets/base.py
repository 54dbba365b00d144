"""What every dataset is: an endless seeded stream of requests, arrival 0 (the load sets it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from tokenway.bench.workload import WorkloadRequest


class Dataset(Protocol):
    """A source of requests; the same seed yields the same stream."""

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        """Requests in send order, endless (finite sources cycle)."""
        ...


class DatasetError(ValueError):
    """A data file could not be used; names the file and, where known, the line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line


def read_text(path: Path) -> str:
    """The file as UTF-8 text; DatasetError names it (and the line of a byte that is not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(str(path), None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise DatasetError(str(path), line, "not UTF-8 text") from None


def chat(
    user: str, system: str = "", history: tuple[dict[str, str], ...] = ()
) -> tuple[dict[str, str], ...]:
    """Chat messages: an optional system prompt, earlier turns, then the user's message."""
    head = ({"role": "system", "content": system},) if system else ()
    return (*head, *history, {"role": "user", "content": user})
