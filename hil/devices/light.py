"""The simulated LED panel's firmware: catalogue handlers over a LightModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.device import SimDevice, command_handlers
from hil.models.light import LightModel
from protocols.catalogue import LIGHT_POWER, LIGHT_SET, LIGHT_STATUS
from protocols.messages.common import DeviceClass, Empty
from protocols.messages.light import LightSet, LightStatus, PowerSwitch


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
        self.handlers.update(
            command_handlers(
                (LIGHT_STATUS, self._status),
                (LIGHT_SET, self._set),
                (LIGHT_POWER, self._power),
            )
        )

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
