from __future__ import annotations

from pathlib import Path

from tokenway.config.errors import ConfigError
from tokenway.config.loader import parse_platform
from tokenway.config.platform import PlatformConfig
from tokenway.config.reload import ConfigWatcher

GOOD = "pools: [{name: a, endpoints: ['127.0.0.1:8001']}]\nmodels: [{name: m, pool: a}]\n"
OTHER = GOOD.replace("name: m", "name: n")


class Applied:
    def __init__(self, running: str, fail: bool = False) -> None:
        self.configs: list[PlatformConfig] = [parse_platform(running)]
        self.rejected: list[ConfigError] = []
        self.fail = fail

    async def apply(self, config: PlatformConfig) -> None:
        if self.fail:
            raise RuntimeError("the JWKS has no usable key")
        self.configs.append(config)

    def running(self) -> PlatformConfig:
        return self.configs[-1]


def watcher(path: Path, applied: Applied) -> ConfigWatcher:
    return ConfigWatcher(path, applied.apply, applied.rejected.append, applied.running)


async def settle(watch: ConfigWatcher) -> bool:
    """Two polls: a change is applied once it held still for one."""
    return await watch.check() or await watch.check()


async def test_a_file_caught_mid_save_is_never_applied(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied(GOOD)
    watch = watcher(path, applied)
    assert not await settle(watch)  # the file is what is running
    path.write_text("")  # the editor truncated the file ...
    assert not await watch.check()
    path.write_text(OTHER)  # ... and wrote it again before the next poll
    assert not await watch.check()
    assert await watch.check()  # unchanged for one poll: applied
    assert [[m.name for m in c.models] for c in applied.configs] == [["m"], ["n"]]


async def test_sighup_applies_at_once(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied(GOOD)
    watch = watcher(path, applied)
    path.write_text(OTHER)
    assert await watch.check(force=True)


async def test_a_config_that_cannot_be_built_is_rejected_and_watching_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied(GOOD, fail=True)
    watch = watcher(path, applied)
    path.write_text(OTHER)
    assert not await watch.check(force=True)
    assert "no usable key" in str(applied.rejected[0])
    applied.fail = False
    path.write_text(GOOD)
    assert await watch.check(force=True)


async def test_an_edit_made_while_starting_is_not_missed(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(OTHER)  # edited after the process read GOOD, before the watcher started
    applied = Applied(GOOD)
    assert await settle(watcher(path, applied))
    assert [m.name for m in applied.running().models] == ["n"]
