"""Hot reload: re-read the platform file when it changes or on SIGHUP; keep the old one if bad."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from tokenway.config.errors import ConfigError, ConfigIssue
from tokenway.config.loader import load_platform
from tokenway.config.platform import PlatformConfig

log = logging.getLogger(__name__)


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class ConfigWatcher:
    """Polls the file's content hash; a valid new file is handed to `apply`, an invalid one to
    `rejected`, and the running configuration stays until a valid file arrives."""

    def __init__(
        self,
        path: Path,
        apply: Callable[[PlatformConfig], Awaitable[None]],
        rejected: Callable[[ConfigError], None],
        running: Callable[[], PlatformConfig],
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.apply = apply
        self.rejected = rejected
        self.running = running
        self.interval = interval
        # No baseline: the file is compared with the running configuration once, so an edit
        # made while the process was starting (after the file was read) is not missed.
        self._digest: bytes | None = None
        self._changing: bytes | None = None
        """A new content seen once: it is applied when the next poll finds it unchanged."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def check(self, force: bool = False) -> bool:
        """Reload if the content changed and held still for one poll (or when forced: SIGHUP);
        True if a new config was applied.

        Waiting one poll keeps a file caught mid-save (an editor that truncates, then writes)
        from being applied: an empty or cut-off file can still be valid YAML, and would
        replace every pool and model with nothing."""
        digest = _digest(self.path)
        if digest is None or (digest == self._digest and not force):
            self._changing = None
            return False
        if not force and digest != self._changing:
            self._changing = digest
            return False
        self._changing = None
        self._digest = digest
        try:
            config = load_platform(self.path)
            if config == self.running() and not force:
                return False
            await self.apply(config)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("configuration rejected, keeping the running one: %s", issue)
            self.rejected(exc)
            return False
        except Exception as exc:
            # Building what the file describes failed (an unusable JWKS, a policy the engine
            # refuses): the running configuration stays, and the watcher keeps watching.
            log.exception("configuration could not be applied, keeping the running one")
            self.rejected(ConfigError([ConfigIssue(str(self.path), None, "", str(exc))]))
            return False
        return True

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
                forced = True
            except TimeoutError:
                forced = False
            self._wake.clear()
            await self.check(force=forced)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._wake.set)
        except (NotImplementedError, RuntimeError):
            log.warning("SIGHUP reload unavailable here; watching the file only")
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
