"""The simulated LED panel's firmware: catalogue handlers over a LightModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.device import SimDevice, command_handlers
from hil.models.light import LightModel
from protocols.catalogue import LIGHT_FAILSAFE, LIGHT_POWER, LIGHT_SET, LIGHT_STATUS
from protocols.messages.common import DeviceClass, Empty
from protocols.messages.light import LightFailsafe, LightSet, LightStatus, PowerSwitch

FAILSAFE_FADE_MS = 2000


class LightDevice(SimDevice):
    device_class = DeviceClass.LIGHT
    model: LightModel

    def __init__(self, name: str, model: LightModel, path: Path, **kwargs: Any) -> None:
        super().__init__(
            name,
            model,
            path,
            model_name=model.params.model,
            firmware=model.params.firmware,
            heartbeat_ms=model.params.heartbeat_ms,
            **kwargs,
        )
        self.failsafe_permille = 0  # firmware RAM: back to 0 after a reset
        self.handlers.update(
            command_handlers(
                (LIGHT_STATUS, self._status),
                (LIGHT_SET, self._set),
                (LIGHT_POWER, self._power),
                (LIGHT_FAILSAFE, self._failsafe),
            )
        )

    def _reboot(self) -> None:
        super()._reboot()
        self.failsafe_permille = 0

    def _failsafe(self, request: LightFailsafe) -> LightStatus:
        self.failsafe_permille = request.intensity_permille
        return self._status(Empty())

    def on_host_lost(self) -> None:
        m = self.model
        m.set_level(min(self.failsafe_permille, m.target_permille), m.cct_k(), FAILSAFE_FADE_MS)

    def _status(self, _: Empty) -> LightStatus:
        m = self.model
        return LightStatus(
            on=m.on,
            intensity_permille=round(m.output_permille()),
            cct_k=m.cct_k(),
            target_intensity_permille=m.target_permille,
            target_cct_k=m.target_cct_k,
            fade_remaining_ms=m.fade_remaining_ms(),
            output_limit_permille=m.output_limit_permille(),
            draw_mw=round(m.draw_w() * 1000),
            temperature_cdeg=max(-4000, min(15000, round(m.temperature_c * 100))),
            faults=m.faults,
        )

    def _set(self, request: LightSet) -> LightStatus:
        self.model.set_level(request.intensity_permille, request.cct_k, request.fade_ms)
        return self._status(Empty())

    def _power(self, request: PowerSwitch) -> LightStatus:
        self.model.set_on(request.on)
        return self._status(Empty())
