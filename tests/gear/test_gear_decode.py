"""`cupola decode --protocol`: each foreign protocol's capture decoded block by block."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols import enttec, rdm
from protocols import sony9pin as s9
from protocols.tap import Direction, TapRecord
from tools.cli import main
from tools.exits import EX_DATAERR
from tools.tap_client import format_tap_line, tap_entries


def decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["decode", *args])
    return code, capsys.readouterr().out.splitlines()


def test_nine_pin_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "deck.bin"
    capture.write_bytes(
        s9.command(s9.Cmd.RECORD)
        + b"\xff"
        + s9.command(s9.Cmd.LTC_TIME_DATA, s9.encode_time(s9.TimeData(10, 0, 1, 2)))
    )
    code, lines = decode(capsys, str(capture), "--protocol", "sony9pin")
    assert code == 1  # one byte dropped
    assert "RECORD" in lines[0] and "DROP" in lines[1]
    assert "RESYNC" in lines[2] and "timecode=10:00:01:02" in lines[2]


def test_widget_capture_with_rdm_inside(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    request = rdm.Packet(
        rdm.parse_uid("7a70:00000001"),
        rdm.parse_uid("454e:00000001"),
        1,
        1,
        0,
        0,
        rdm.CommandClass.GET,
        rdm.Pid.SENSOR_VALUE,
        b"\x00",
    )
    capture = tmp_path / "widget.bin"
    capture.write_bytes(enttec.dmx(bytes([255, 0, 7])) + enttec.encode(7, rdm.encode(request)))
    code, lines = decode(capsys, str(capture), "--protocol", "enttec-dmx", "--json")
    assert code == 0
    assert '"levels": "ff0007"' in lines[0]
    assert "GET SENSOR_VALUE 454e:00000001->7a70:00000001" in lines[1]


def test_modbus_answers_and_noise(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    capture = tmp_path / "bus.hex"
    capture.write_text("01 04 04 41 df 33 33 8a a7\n")  # 27.9 V as an SDM120 float
    code, lines = decode(
        capsys, "--hex", str(capture), "--protocol", "modbus-rtu", "--direction", "from-device"
    )
    assert code == 0 and "unit 1 READ_INPUT_REGISTERS" in lines[0]
    capture.write_text("de ad be ef\n")
    assert decode(capsys, "--hex", str(capture), "--protocol", "modbus-rtu")[0] == EX_DATAERR


def test_a_tapped_deck_link_decodes_both_directions() -> None:
    """What `cupola decode --tap ... --protocol sony9pin` does with the daemon's tap records."""
    reply = s9.command(s9.Cmd.LTC_TIME_DATA, s9.encode_time(s9.TimeData(1, 2, 3, 4)))
    records = [
        TapRecord(
            Direction.TO_DEVICE, 1_000_000_000, s9.command(s9.Cmd.CURRENT_TIME_SENSE, b"\x01")
        ),
        TapRecord(Direction.FROM_DEVICE, 1_002_000_000, reply[:3]),
        TapRecord(Direction.FROM_DEVICE, 1_003_000_000, reply[3:]),
    ]
    lines = [format_tap_line(e, "sony9pin") for e in tap_entries(iter(records), "sony9pin")]
    assert len(lines) == 2
    assert "-> " in lines[0] and "CURRENT_TIME_SENSE" in lines[0]
    assert "<- " in lines[1] and "timecode=01:02:03:04" in lines[1]
