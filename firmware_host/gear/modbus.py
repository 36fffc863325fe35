"""A Modbus RTU power meter and relay board behind the PDU driver's interface (pymodbus).

The meter (Eastron SDM120 register map) measures the whole feed: voltage, current, active
power. The relay board's coils switch the channels. Nothing measures one channel: each load's
draw is Cupola's model, and the PDU status says so (per-channel power is not reported).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException

from firmware_host.drivers.pdu import PduDriver
from firmware_host.gear.settings import GearConfig
from firmware_host.link.errors import LinkDown, LinkError
from firmware_host.link.stats import LinkStats
from protocols import modbus_rtu as mb
from protocols.messages.pdu import PduChannel, PduStatus

BAUD = 9600


class ModbusPdu(PduDriver):
    def __init__(self, name: str, client: Any, gear: GearConfig, stats: LinkStats) -> None:
        # No native session: the meter and the relays are Modbus units on one bus.
        self.name = name
        self.client = client
        self.gear = gear
        self.stats = stats
        self.registers = {r.name: r.address for r in mb.REGISTER_MAPS[gear.register_map]}
        self.last_ok = 0.0  # loop time of the last answer

    @classmethod
    async def connect(
        cls,
        name: str,
        port: str,
        gear: GearConfig,
        stats: LinkStats,
        *,
        timeout_s: float,
        retries: int,
        baud: int = BAUD,
    ) -> ModbusPdu:
        client = AsyncModbusSerialClient(
            port, baudrate=baud, timeout=timeout_s, retries=retries, reconnect_delay=0
        )
        if not await client.connect():
            client.close()
            raise LinkDown(f"cannot open {port} for Modbus RTU")
        return cls(name, client, gear, stats)

    def close(self) -> None:
        self.client.close()

    async def _call(self, what: str, coroutine: Any) -> Any:
        self.stats.requests += 1
        try:
            response = await coroutine
        except ModbusException as exc:
            self.stats.failures += 1
            raise LinkError(f"{self.name}: {what}: {exc}") from exc
        if response.isError():
            self.stats.nacks += 1
            raise LinkError(f"{self.name}: {what} refused: {response}")
        self.stats.replies += 1
        self.last_ok = asyncio.get_running_loop().time()
        return response

    async def read_float(self, name: str) -> float:
        response = await self._call(
            f"read {name}",
            self.client.read_input_registers(
                self.registers[name], count=2, device_id=self.gear.meter_unit
            ),
        )
        high, low = response.registers
        return mb.registers_float(high, low)

    async def poll(self) -> PduStatus:
        volts = await self.read_float("voltage")
        watts = await self.read_float("active_power")
        coils = await self._call(
            "read relays",
            self.client.read_coils(
                0, count=self.gear.relay_channels, device_id=self.gear.relay_unit
            ),
        )
        channels = tuple(
            PduChannel(
                channel=i,
                on=bool(coils.bits[i]),
                tripped=False,
                voltage_mv=round(volts * 1000) if coils.bits[i] else 0,
                current_ma=0,
                power_mw=0,
            )
            for i in range(self.gear.relay_channels)
        )
        return PduStatus(
            bus_voltage_mv=round(volts * 1000),
            total_power_mw=round(watts * 1000),
            channels=channels,
        )

    async def switch(self, channel: int, on: bool) -> PduChannel:
        await self._call(
            f"switch relay {channel}",
            self.client.write_coil(channel, on, device_id=self.gear.relay_unit),
        )
        return PduChannel(
            channel=channel, on=on, tripped=False, voltage_mv=0, current_ma=0, power_mw=0
        )
