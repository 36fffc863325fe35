"""The simulated PDU's firmware: channel readings and switching over a PduModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.device import SimDevice, command_handlers
from hil.models.base import Refusal
from hil.models.pdu import PduModel
from protocols.catalogue import PDU_CHANNEL_SET, PDU_STATUS
from protocols.messages.common import DeviceClass, Empty, NackCode
from protocols.messages.pdu import ChannelSwitch, PduChannel, PduStatus


class PduDevice(SimDevice):
    device_class = DeviceClass.PDU
    model: PduModel

    def __init__(self, name: str, model: PduModel, path: Path, **kwargs: Any) -> None:
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
            command_handlers((PDU_STATUS, self._status), (PDU_CHANNEL_SET, self._switch))
        )

    def _status(self, _: Empty) -> PduStatus:
        readings = self.model.read()
        channels = tuple(_channel(r) for r in readings)
        return PduStatus(
            bus_voltage_mv=round(self.model.bus_voltage_v() * 1000),
            total_power_mw=sum(c.power_mw for c in channels),
            channels=channels,
        )

    def _switch(self, request: ChannelSwitch) -> PduChannel:
        if request.channel >= len(self.model.channels):
            raise Refusal(
                NackCode.NOT_FOUND,
                f"channel {request.channel} does not exist ({len(self.model.channels)} channels)",
            )
        self.model.set_channel(request.channel, request.on)
        return _channel(self.model.read()[request.channel])


def _channel(reading: Any) -> PduChannel:
    return PduChannel(
        channel=reading.channel,
        on=reading.on,
        tripped=reading.tripped,
        voltage_mv=min(0xFFFF, round(reading.voltage_v * 1000)),
        current_ma=min(0xFFFF, round(reading.current_a * 1000)),
        power_mw=round(reading.power_w * 1000),
    )
