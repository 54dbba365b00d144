"""LoRA adapter slots: which adapters may run in a batch and which are resident on the GPU.

At most `max_loras` distinct adapters run in one batch; a request for another adapter waits
until a slot frees. The GPU holds `max_loras` adapter weights, least recently used replaced
first; activating an adapter that is not resident costs the profile's load latency.
"""

from __future__ import annotations

from collections import Counter, OrderedDict


class LoraSlots:
    def __init__(self, max_loras: int) -> None:
        self.max_loras = max_loras
        self.running: Counter[str] = Counter()
        """Running requests per adapter; its keys are the adapters active in the batch."""
        self._resident: OrderedDict[str, None] = OrderedDict()
        self.loads = 0

    def can_run(self, adapter: str) -> bool:
        return adapter in self.running or len(self.running) < self.max_loras

    def start(self, adapter: str) -> bool:
        """A request for `adapter` joins the batch; True when its weights had to be loaded."""
        self.running[adapter] += 1
        if adapter in self._resident:
            self._resident.move_to_end(adapter)
            return False
        if len(self._resident) >= self.max_loras:
            for name in self._resident:
                if name not in self.running:
                    del self._resident[name]
                    break
        self._resident[adapter] = None
        self.loads += 1
        return True

    def stop(self, adapter: str) -> None:
        self.running[adapter] -= 1
        if self.running[adapter] <= 0:
            del self.running[adapter]

    def evict(self, adapter: str) -> None:
        """Unloading an adapter drops its weights from the GPU."""
        self._resident.pop(adapter, None)
