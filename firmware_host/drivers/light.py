"""Light driver: status, level with fade, power."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from firmware_host.link.session import RequestSession
from protocols.catalogue import LIGHT_FAILSAFE, LIGHT_POWER, LIGHT_SET, LIGHT_STATUS
from protocols.messages.common import EMPTY
from protocols.messages.light import LightFailsafe, LightSet, LightStatus, PowerSwitch


class LightDriver:
    kind = "light"

    def __init__(self, session: RequestSession) -> None:
        self.session = session

    def poll(self) -> Coroutine[Any, Any, LightStatus]:
        """The session's coroutine itself (as `CameraDriver.poll`)."""
        return self.session.call(LIGHT_STATUS, EMPTY)

    async def set_level(self, intensity_permille: int, cct_k: int, fade_ms: int) -> LightStatus:
        body = LightSet(intensity_permille=intensity_permille, cct_k=cct_k, fade_ms=fade_ms)
        return await self.session.call(LIGHT_SET, body)

    async def set_power(self, on: bool) -> LightStatus:
        return await self.session.call(LIGHT_POWER, PowerSwitch(on=on))

    async def set_failsafe(self, intensity_permille: int) -> LightStatus:
        body = LightFailsafe(intensity_permille=intensity_permille)
        return await self.session.call(LIGHT_FAILSAFE, body)
