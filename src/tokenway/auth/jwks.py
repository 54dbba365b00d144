"""Signing keys of a JWT issuer: a JWKS file or URL, cached, refreshed, looked up by key id.

Lookups never do I/O: `refresh()` runs in the background (`run()`), periodically and soon after
a token names a key id that is not cached yet, which is how key rotation is picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

from tokenway.config.access import JwksSource

log = logging.getLogger(__name__)

FORCED_REFRESH_INTERVAL = 10.0
"""At most one early refresh per this many seconds, so forged key ids cannot flood the issuer."""
MAX_JWKS_BYTES = 1 << 20


class JwksKeys:
    __slots__ = ("_clock", "_file_mtime", "_keys", "_last_forced", "_wanted", "source")

    def __init__(self, source: JwksSource, clock: Callable[[], float]) -> None:
        self.source = source
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._file_mtime: float | None = None
        self._last_forced = float("-inf")
        self._wanted = asyncio.Event()

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is None and self.source.url is not None:
            now = self._clock()
            if now - self._last_forced >= FORCED_REFRESH_INTERVAL:
                self._last_forced = now
                self._wanted.set()
        return found

    def load_file(self) -> None:
        """Read the JWKS file if it changed since the last read."""
        assert self.source.file is not None
        mtime = os.stat(self.source.file).st_mtime
        if mtime != self._file_mtime:
            with open(self.source.file, encoding="utf-8") as handle:
                self._install(json.load(handle))
            self._file_mtime = mtime

    async def refresh(self) -> None:
        if self.source.file is not None:
            self.load_file()
        else:
            self._install(await asyncio.to_thread(_fetch, str(self.source.url)))

    async def run(self) -> None:
        """Refresh every `refresh` interval, and early when an unknown key id was seen."""
        while True:
            try:
                await self.refresh()
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                log.warning("jwks refresh failed for %s: %s", self._where(), exc)
            self._wanted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), timeout=self.source.refresh)

    def _install(self, document: Any) -> None:
        keyset = jwt.PyJWKSet.from_dict(document)
        keys = {k.key_id: k for k in keyset.keys}
        if len(keyset.keys) == 1:
            keys.setdefault(None, keyset.keys[0])
        self._keys = keys
        log.info("loaded %d signing keys from %s", len(keyset.keys), self._where())

    def _where(self) -> str:
        return str(self.source.file or self.source.url)


def _fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read(MAX_JWKS_BYTES))
