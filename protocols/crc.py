"""CRC-32C (Castagnoli), the frame check sequence of the device protocol.

Parameters (Rocksoft model, as catalogued by reveng as CRC-32/ISCSI):
width 32, poly 0x1EDC6F41, init 0xFFFFFFFF, refin true, refout true, xorout 0xFFFFFFFF,
check 0xE3069283 (CRC of the ASCII bytes "123456789"), residue 0xB798B438.
Why this polynomial is in protocols/SPEC.md ("Frame check sequence").
"""

from __future__ import annotations

from collections.abc import Callable

import crc32c as _crc32c

POLYNOMIAL = 0x1EDC6F41
REFLECTED_POLYNOMIAL = 0x82F63B78
CHECK_VALUE = 0xE3069283
CRC_SIZE = 4


# CRC-32C of `data`, hardware-accelerated where the CPU has it: the library's own function,
# not one wrapping it (two frames checked per request and reply, at every poll of every device).
crc32c: Callable[[bytes | bytearray | memoryview], int] = _crc32c.crc32c


def crc32c_bitwise(data: bytes) -> int:
    """Reference bit-by-bit implementation, the one a firmware engineer would port first."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ REFLECTED_POLYNOMIAL if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF
