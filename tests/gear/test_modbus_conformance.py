"""Modbus RTU both ways against pymodbus (an implementation nobody here wrote):
Cupola's meter/relay adapter against a pymodbus server holding the SDM120 and relay maps, and
the simulated meter/relay PDU against a pymodbus client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bench import protocol_fd
from firmware_host.gear.modbus import ModbusPdu
from firmware_host.gear.settings import GearConfig
from firmware_host.link.errors import LinkError
from firmware_host.link.stats import LinkStats
from hil.bench import DeviceSpec
from hil.gear.meter import ModbusMeterPdu
from hil.models.light import LightModel
from protocols import modbus_rtu as mb
from tests.hil.host import bench

VOLTS, WATTS, AMPS = 27.9, 143.25, 5.134
RELAYS = [True, False, True, True, False, False, True, False]


@contextlib.asynccontextmanager
async def pymodbus_server() -> AsyncIterator[str]:
    """pymodbus's RTU server on a pty: unit 1 an SDM120's input registers, unit 2 eight coils."""
    protocol_fd.register()
    master, slave = os.openpty()
    tty.setraw(slave)
    floats = {
        "voltage": VOLTS,
        "current": AMPS,
        "active_power": WATTS,
        "frequency": 0.0,
        "total_active_energy": 1.5,
    }
    bits, words = [SimData(9000, datatype=DataType.BITS)], [SimData(9000, datatype=DataType.UINT16)]
    meter = SimDevice(
        id=1,
        simdata=(
            bits,
            bits,
            words,
            [
                SimData(r.address, values=floats[r.name], datatype=DataType.FLOAT32)
                for r in mb.SDM120
            ],
        ),
    )
    relays = SimDevice(
        id=2,
        simdata=([SimData(0, count=8, values=RELAYS, datatype=DataType.BITS)], bits, words, words),
    )
    server = ModbusSerialServer(
        [meter, relays],
        framer=FramerType.RTU,
        port=f"{protocol_fd.SCHEME}{master}",
        baudrate=115200,
    )
    task = asyncio.create_task(server.serve_forever())
    try:
        yield os.ttyname(slave)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        os.close(slave)


async def test_cupola_adapter_reads_and_switches_a_pymodbus_server() -> None:
    async with pymodbus_server() as port:
        pdu = await ModbusPdu.connect(
            "meter", port, GearConfig(), LinkStats(), timeout_s=1.0, retries=1, baud=115200
        )
        try:
            status = await pdu.poll()
            assert status.bus_voltage_mv == round(VOLTS * 1000)
            assert status.total_power_mw == round(WATTS * 1000)
            assert [c.on for c in status.channels] == RELAYS
            assert all(c.power_mw == 0 for c in status.channels)  # per channel: not reported
            await pdu.switch(1, True)
            await pdu.switch(0, False)
            status = await pdu.poll()
            assert [c.on for c in status.channels][:2] == [False, True]
            bad = ModbusPdu(
                pdu.name, pdu.client, GearConfig(meter_unit=1, relay_unit=1), LinkStats()
            )
            with pytest.raises(LinkError, match="refused"):  # unit 1 has no coils
                await bad.switch(0, True)
        finally:
            pdu.close()


async def test_simulated_meter_answers_a_pymodbus_client(tmp_path: Path) -> None:
    spec = [
        DeviceSpec(name="meter", kind="pdu", protocol="modbus-rtu", baud=None),
        DeviceSpec(
            name="lamp", kind="light", pdu_channel=3, model={"standby_w": 7.0, "inrush_s": 0.0}
        ),
    ]
    async with bench(tmp_path, *spec) as instance:
        meter = instance.devices["meter"]
        assert isinstance(meter, ModbusMeterPdu)
        client = AsyncModbusSerialClient(str(meter.path), baudrate=9600, timeout=1.0, retries=1)
        assert await client.connect()
        try:
            lamp = instance.devices["lamp"]
            assert isinstance(lamp.model, LightModel)
            lamp.model.set_on(True)  # 7 W standby behind relay 3
            rr = await client.read_input_registers(0x000C, count=2, device_id=1)
            watts = client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)
            assert watts == pytest.approx(meter.model.params.own_draw_w + 7.0, abs=1.5)
            rr = await client.read_input_registers(0x0000, count=2, device_id=1)
            volts = client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)
            assert volts == pytest.approx(meter.model.bus_voltage_v(), abs=0.01)
            assert (await client.read_coils(0, count=8, device_id=2)).bits[:8] == [True] * 8
            assert not (await client.write_coil(3, False, device_id=2)).isError()
            assert not lamp.powered  # the relay really cut the lamp's feed
            assert (await client.read_coils(3, count=1, device_id=2)).bits[0] is False
            error = await client.read_holding_registers(0, count=2, device_id=1)
            assert error.isError() and error.exception_code == mb.ExceptionCode.ILLEGAL_FUNCTION
            error = await client.read_input_registers(0x0002, count=2, device_id=1)
            assert error.isError() and error.exception_code == mb.ExceptionCode.ILLEGAL_DATA_ADDRESS
        finally:
            client.close()
