"""What every simulated piece of real gear shares: the cable, the model's clock tick, faults.

The native SimDevice (hil/device.py) carries Cupola's session layer; real gear has none, so
this base keeps only what the bench needs from any device: an EmulatedLink with the line's
real timing, a model advanced on a tick, and the device faults (stuck, slow, reset, power)
that a bench applies to it by name.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import ClassVar

from hil.device import Model
from hil.link import BITS_PER_BYTE, EmulatedLink
from protocols.messages.common import DeviceClass

log = logging.getLogger(__name__)

_TICK_S = 0.1


class GearDevice:
    """One piece of gear on one emulated cable; subclasses parse and answer bytes."""

    device_class: ClassVar[DeviceClass]
    protocol: ClassVar[str]

    def __init__(
        self,
        name: str,
        model: Model,
        path: Path,
        *,
        baud: int | None,
        bits_per_byte: int = BITS_PER_BYTE,
        parity: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.rng = rng or random.Random()
        self.link = EmulatedLink(
            path,
            self._receive,
            baud=baud,
            rng=self.rng,
            bits_per_byte=bits_per_byte,
            parity=parity,
        )
        self.stuck = False  # fault: hears, never answers
        self.slow_ms = 0.0  # fault: extra time before every answer
        self.requests_handled = 0
        self.errors_answered = 0  # NAKs, exceptions: requests refused for what they were
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        return self.link.path

    @property
    def powered(self) -> bool:
        return self.model.powered

    def start(self) -> None:
        self.link.plug()
        self._task = asyncio.create_task(self._run(), name=f"gear-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.link.close()

    def draw_w(self) -> float:
        return self.model.draw_w()

    def set_powered(self, powered: bool) -> None:
        if powered != self.model.powered:
            self.model.set_powered(powered)
            self.on_reboot()

    def reset(self) -> None:
        self.model.reset()
        self.on_reboot()

    def on_reboot(self) -> None:
        """Forget partial input after a power cycle or reset."""

    def _receive(self, data: bytes) -> None:
        if not self.model.powered or self.stuck:
            return
        for reply in self.handle(data):
            self.answer(reply)

    def handle(self, data: bytes) -> list[bytes]:
        """Bytes from the host -> the answers to send, in order."""
        raise NotImplementedError

    def answer(self, reply: bytes, extra_s: float = 0.0) -> None:
        delay = self.slow_ms / 1000.0 + extra_s
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._late, reply)
        else:
            self.link.send(reply)

    def _late(self, reply: bytes) -> None:
        if self.model.powered and not self.stuck:
            self.link.send(reply)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            if self.model.powered:
                self.model.advance()
                self.model.events.clear()  # real gear has no event channel to send them on

    def describe(self) -> dict[str, object]:
        return {
            "device": self.name,
            "kind": self.device_class.name.lower(),
            "protocol": self.protocol,
            "path": str(self.path),
            "connected": self.link.port.connected,
            "stuck": self.stuck,
            "slow_ms": self.slow_ms,
            "requests_handled": self.requests_handled,
            "errors_answered": self.errors_answered,
            "link": vars(self.link.counters).copy(),
            "model": self.model.describe(),
        }
