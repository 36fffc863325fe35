"""A pyserial URL handler, `fd://N`: an already-open file descriptor used as a serial port.

pymodbus opens its ports through `serial.serial_for_url`, and a pseudo-terminal's master end
has no path to open. Registering this module's package with pyserial lets the Modbus peer
serve the master end of a pty exactly as Cupola's simulators do (pyserial looks for a module
named `protocol_<scheme>`, hence the name).
"""

from __future__ import annotations

import os

import serial
from serial import serialposix

SCHEME = "fd://"


def register() -> None:
    if __package__ not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(__package__)


class Serial(serialposix.Serial):
    def open(self) -> None:
        if not str(self.portstr).startswith(SCHEME):
            raise serial.SerialException(f"expected {SCHEME}N, got {self.portstr!r}")
        self.fd = int(str(self.portstr)[len(SCHEME) :])
        os.set_blocking(self.fd, False)
        self.pipe_abort_read_r, self.pipe_abort_read_w = os.pipe()
        self.pipe_abort_write_r, self.pipe_abort_write_w = os.pipe()
        self.is_open = True
