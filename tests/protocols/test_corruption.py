"""Corruption never passes for a valid frame, beyond what the CRC allows and promises."""

from __future__ import annotations

import binascii
import math
import random
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.crc import POLYNOMIAL, crc32c
from protocols.framing import MAX_FRAME, Deframer, Kind
from tests.protocols.test_deframer import FrameSpec, frame_specs, frames_of, wire


@given(
    specs=st.lists(frame_specs, min_size=1, max_size=4),
    where=st.integers(0, 10**6),
    flip=st.integers(1, 255),
)
def test_no_single_byte_corruption_yields_a_different_frame(
    specs: list[FrameSpec], where: int, flip: int
) -> None:
    stream = bytearray(b"".join(wire(s) for s in specs))
    stream[where % len(stream)] ^= flip
    got = frames_of(Deframer().feed(bytes(stream)))
    # Whatever was hit, only original frames come out, in order, and at most one is lost
    # (the leading delimiter means a corrupted delimiter costs no neighbour).
    remaining = iter(specs)
    assert all(any(g == s for s in remaining) for g in got)
    assert len(got) >= len(specs) - 1


def _undetected_rate(check: Callable[[bytes], int], width: int, samples: int) -> int:
    """Frames whose check still matches after 6..40 random bit flips (frame + check)."""
    rng = random.Random(20261124)
    mask = (1 << width) - 1
    escaped = 0
    for _ in range(samples):
        body = rng.randbytes(rng.randint(5, MAX_FRAME - 4))
        codeword = int.from_bytes(body, "little") | (check(body) & mask) << (8 * len(body))
        bits = 8 * len(body) + width
        for position in rng.sample(range(bits), rng.randint(6, 40)):
            codeword ^= 1 << position
        received = codeword.to_bytes(len(body) + math.ceil(width / 8), "little")
        body_rx, check_rx = received[: len(body)], int.from_bytes(received[len(body) :], "little")
        escaped += (check(body_rx) & mask) == check_rx
    return escaped


def test_crc32c_catches_random_multi_bit_errors_at_its_promised_rate() -> None:
    samples = 50_000  # ten million in the soak: test_crc32c_multi_bit_rate_over_ten_million_frames
    escaped = _undetected_rate(crc32c, 32, samples)
    # Promise: 2^-32 per corrupted frame, so 0 expected here (1.2e-5); more than 1 is a bug.
    assert escaped <= 1, f"{escaped} of {samples} corrupted frames passed CRC-32C"


def test_the_rate_harness_can_see_escapes() -> None:
    """Control: the same harness with an 8-bit check measures 1/256, within 4 sigma."""
    samples = 25_000
    escaped = _undetected_rate(crc32c, 8, samples)
    expected = samples / 256
    assert abs(escaped - expected) < 4 * math.sqrt(expected), escaped


def test_random_wire_corruption_never_decodes_as_another_frame() -> None:
    rng = random.Random(7)
    forged = 0
    for _ in range(20_000):
        spec: FrameSpec = (Kind.REPLY, rng.randrange(256), rng.randrange(65536),
                           rng.randbytes(rng.randint(0, 245)), False)  # fmt: skip
        data = bytearray(wire(spec))
        for _ in range(rng.randint(2, 12)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        forged += any(f != spec for f in frames_of(Deframer().feed(bytes(data))))
    assert forged == 0


def _syndromes(check: Callable[[bytes], int], width: int, frame_bytes: int) -> np.ndarray:
    """The check's response to each single-bit error in a frame of `frame_bytes`."""
    data_bytes = frame_bytes - width // 8
    zero = check(bytes(data_bytes))
    out = []
    for byte in range(data_bytes):
        for bit in range(8):
            error = bytearray(data_bytes)
            error[byte] = 1 << bit
            out.append(check(bytes(error)) ^ zero)
    out += [1 << j for j in range(width)]  # errors in the check field itself
    return np.array(out, dtype=np.uint64)


def _low_weight_escapes(syndromes: np.ndarray) -> dict[int, int]:
    """Undetected error patterns of weight 1 to 4 (an error escapes if its syndromes XOR to 0)."""
    n = len(syndromes)
    i, j = np.triu_indices(n, 1)
    pairs = syndromes[i] ^ syndromes[j]
    _, counts = np.unique(pairs, return_counts=True)
    return {
        1: int((syndromes == 0).sum()),
        2: int((pairs == 0).sum()),
        3: int(np.isin(pairs, syndromes).sum()),
        4: int((counts[counts > 1] * (counts[counts > 1] - 1) // 2).sum()),
    }


def test_crc32c_has_hamming_distance_6_at_the_largest_frame() -> None:
    escapes = _low_weight_escapes(_syndromes(crc32c, 32, MAX_FRAME))
    assert escapes == {1: 0, 2: 0, 3: 0, 4: 0}
    # An even number of terms means (x+1) divides the polynomial: every odd-weight error is
    # caught, so with weights 2 and 4 clean too the distance is at least 6.
    assert (bin(POLYNOMIAL).count("1") + 1) % 2 == 0


def test_the_alternatives_are_weaker_at_our_length() -> None:
    ieee = _low_weight_escapes(_syndromes(zlib.crc32, 32, MAX_FRAME))
    assert ieee == {1: 0, 2: 0, 3: 0, 4: 0}
    assert (bin(0x04C11DB7).count("1") + 1) % 2 == 1  # no (x+1) factor: weight 5 can escape
    ccitt = _low_weight_escapes(_syndromes(lambda d: binascii.crc_hqx(d, 0xFFFF), 16, MAX_FRAME))
    assert ccitt[4] > 0, "CRC-16/CCITT has undetected 4-bit errors at 254 bytes"


@pytest.mark.soak
@pytest.mark.timeout(1800)  # ten million frames: minutes, not the suite's 120 s per test
def test_crc32c_multi_bit_rate_over_ten_million_frames() -> None:
    escaped = _undetected_rate(crc32c, 32, 10_000_000)
    assert escaped <= 2
