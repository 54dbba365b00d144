from __future__ import annotations

from pathlib import Path

from tokenway.config.errors import ConfigError
from tokenway.config.platform import PlatformConfig
from tokenway.config.reload import ConfigWatcher

GOOD = "pools: [{name: a, endpoints: ['127.0.0.1:8001']}]\nmodels: [{name: m, pool: a}]\n"
OTHER = GOOD.replace("name: m", "name: n")


class Applied:
    def __init__(self, fail: bool = False) -> None:
        self.configs: list[PlatformConfig] = []
        self.rejected: list[ConfigError] = []
        self.fail = fail

    async def apply(self, config: PlatformConfig) -> None:
        if self.fail:
            raise RuntimeError("the JWKS has no usable key")
        self.configs.append(config)


def watcher(path: Path, applied: Applied) -> ConfigWatcher:
    return ConfigWatcher(path, applied.apply, applied.rejected.append)


async def test_a_file_caught_mid_save_is_never_applied(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied()
    watch = watcher(path, applied)
    path.write_text("")  # the editor truncated the file ...
    assert not await watch.check()
    path.write_text(OTHER)  # ... and wrote it again before the next poll
    assert not await watch.check()
    assert await watch.check()  # unchanged for one poll: applied
    assert [[m.name for m in c.models] for c in applied.configs] == [["n"]]


async def test_sighup_applies_at_once(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied()
    watch = watcher(path, applied)
    path.write_text(OTHER)
    assert await watch.check(force=True)


async def test_a_config_that_cannot_be_built_is_rejected_and_watching_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(GOOD)
    applied = Applied(fail=True)
    watch = watcher(path, applied)
    path.write_text(OTHER)
    assert not await watch.check(force=True)
    assert "no usable key" in str(applied.rejected[0])
    applied.fail = False
    path.write_text(GOOD)
    assert await watch.check(force=True)
