"""The peer: pymodbus's async RTU server on a pseudo-terminal, as its own process.

It opens a pty, prints the slave's path on stdout and serves holding registers on the master
end until killed, as `cupola sim` does for Cupola's devices. `python -m bench.modbus_peer`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bench import protocol_fd

BAUD = 115200  # pymodbus's RTU inter-frame timing is derived from it; the pty has no speed


async def serve() -> None:
    protocol_fd.register()
    master, slave = os.openpty()
    device = SimDevice(
        id=1, simdata=[SimData(address=0, values=list(range(100)), datatype=DataType.REGISTERS)]
    )
    server = ModbusSerialServer(
        device, framer=FramerType.RTU, port=f"{protocol_fd.SCHEME}{master}", baudrate=BAUD
    )
    print(os.ttyname(slave), flush=True)
    await server.serve_forever()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
