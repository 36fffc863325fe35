"""DMX fixture personalities: which slots a fixture reads and what they mean.

A personality file (TOML, `protocols/personalities/NAME.toml`) lists the fixture's slots from
its start address on; intensity and colour temperature may each have a fine slot (16-bit).
The same file drives the simulated fixture and the daemon's light driver, so both agree on
what a level means; the file follows the fixture maker's manual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from protocols.errors import MessageError

FOLDER = Path(__file__).with_name("personalities")
INTENSITY_FULL = 1000  # permille, as the native light protocol counts it

Function = Literal["intensity", "intensity_fine", "cct", "cct_fine"]


class Slot(msgspec.Struct, forbid_unknown_fields=True):
    function: Function


class Personality(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    cct_min_k: Annotated[int, msgspec.Meta(ge=1000, le=20000)]
    cct_max_k: Annotated[int, msgspec.Meta(ge=1000, le=20000)]
    slots: Annotated[list[Slot], msgspec.Meta(min_length=1, max_length=512)] = msgspec.field(
        name="slot"
    )

    @property
    def footprint(self) -> int:
        return len(self.slots)

    def _index(self, function: Function) -> int | None:
        for index, slot in enumerate(self.slots):
            if slot.function == function:
                return index
        return None

    def levels(self, intensity_permille: float, cct_k: float) -> bytes:
        """The slot values for a look (intensity 0-1000, colour temperature in kelvin)."""
        out = bytearray(self.footprint)
        span = self.cct_max_k - self.cct_min_k
        cct = min(max((cct_k - self.cct_min_k) / span, 0.0), 1.0) if span else 0.0
        pairs: tuple[tuple[Function, Function, float], ...] = (
            ("intensity", "intensity_fine", min(max(intensity_permille, 0.0), 1000.0) / 1000.0),
            ("cct", "cct_fine", cct),
        )
        for coarse, fine, fraction in pairs:
            at, at_fine = self._index(coarse), self._index(fine)
            if at is None:
                continue
            if at_fine is None:
                out[at] = round(fraction * 255)
            else:
                value = round(fraction * 65535)
                out[at], out[at_fine] = value >> 8, value & 0xFF
        return bytes(out)

    def look(self, levels: bytes) -> tuple[float, int]:
        """(intensity permille, cct K) from the fixture's slot values."""
        levels = levels.ljust(self.footprint, b"\x00")
        fractions: list[float | None] = []
        pairs: tuple[tuple[Function, Function], ...] = (
            ("intensity", "intensity_fine"),
            ("cct", "cct_fine"),
        )
        for coarse, fine in pairs:
            at, at_fine = self._index(coarse), self._index(fine)
            if at is None:
                fractions.append(None)
            elif at_fine is None:
                fractions.append(levels[at] / 255)
            else:
                fractions.append((levels[at] << 8 | levels[at_fine]) / 65535)
        intensity = (fractions[0] or 0.0) * INTENSITY_FULL
        cct_fraction = fractions[1] if fractions[1] is not None else 1.0
        cct = round(self.cct_min_k + cct_fraction * (self.cct_max_k - self.cct_min_k))
        return intensity, cct


def load_personality(name_or_path: str) -> Personality:
    """A shipped personality by name, or a file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = FOLDER / f"{name_or_path}.toml"
    try:
        personality = msgspec.toml.decode(path.read_bytes(), type=Personality)
    except FileNotFoundError as exc:
        shipped = ", ".join(sorted(p.stem for p in FOLDER.glob("*.toml")))
        raise MessageError(f"no personality {name_or_path!r} (shipped: {shipped})") from exc
    except (OSError, msgspec.DecodeError) as exc:
        raise MessageError(f"personality {name_or_path!r}: {exc}") from exc
    if personality.cct_max_k < personality.cct_min_k:
        raise MessageError(f"personality {personality.name}: cct_max_k below cct_min_k")
    return personality
