"""`cupola decode`: frames decoded, drops and resyncs marked, every input form accepted."""

from __future__ import annotations

import json
import os
import subprocess
import tty
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hil.processes import child_preexec
from protocols.spec_tables import vectors
from tests.harness import cupola, interrupt
from tools.decode import decode_stream, format_line, parse_hex

WIRES = [v.wire for v in vectors()]
BY_TITLE = {v.title.split()[0]: v.wire for v in vectors()}  # the last vector of each kind


def test_drops_and_resyncs_are_marked_with_their_offsets() -> None:
    capture = WIRES[0] + b"\x13\x37noise\xaa" + WIRES[4] + WIRES[5]
    entries = list(decode_stream([capture]))
    assert [e["status"] for e in entries] == ["ok", "dropped", "ok", "ok"]
    dropped = entries[1]
    assert dropped["offset"] == len(WIRES[0]) and dropped["reason"] == "cobs"
    assert entries[2]["resync"] and not entries[3]["resync"]
    assert entries[2]["type"] == "LIGHT_SET"
    assert entries[2]["body"] == {"intensity_permille": 625, "cct_k": 4300, "fade_ms": 2000}
    assert "RESYNC" in format_line(entries[2]) and "DROP" in format_line(dropped)


def test_a_crc_failure_is_reported_as_such() -> None:
    bad = bytearray(WIRES[2])
    bad[8] ^= 0x01
    (entry,) = decode_stream([bytes(bad)])
    assert (entry["status"], entry["reason"]) == ("dropped", "crc")


@given(blob=st.binary(max_size=300))
def test_hex_dump_formats_all_read_back(blob: bytes) -> None:
    plain = " ".join(f"{b:02x}" for b in blob)
    prefixed = ",".join(f"0x{b:02X}" for b in blob)
    assert parse_hex(plain) == parse_hex(prefixed) == blob


def test_xxd_and_hexdump_output_are_understood(tmp_path: Path) -> None:
    capture = b"".join(WIRES)
    path = tmp_path / "cap.bin"
    path.write_bytes(capture)
    for tool in (["xxd"], ["hexdump", "-C"]):
        dump = subprocess.run([*tool, str(path)], capture_output=True, text=True, check=True)
        assert parse_hex(dump.stdout) == capture


def test_cli_reads_a_hex_file_and_prints_json(tmp_path: Path) -> None:
    dump = tmp_path / "cap.hex"
    dump.write_text(" ".join(f"{b:02x}" for b in b"".join(WIRES[:3])))
    result = subprocess.run(
        [*cupola("decode", "--hex", "--json"), str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["type"], e["kind"], e["retry"]) for e in lines] == [
        ("PING", "request", False),
        ("PING", "request", True),
        ("PING", "reply", False),
    ]
    assert "3 frames" in result.stderr


def test_cli_decodes_a_live_port() -> None:
    """Bytes are written once the tool says it watches: pyserial flushes what arrives while
    it opens the port, so an open descriptor is not yet a listening tool (waiting for the
    descriptor alone lost the bytes on a busy machine and hung until the test's timeout)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    process = subprocess.Popen(
        [*cupola("decode", "--port", os.ttyname(slave), "--json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=child_preexec,  # noqa: PLW1509 - so its Ctrl-C reaches it
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        watching = process.stderr.readline()
        assert watching.startswith(f"watching {os.ttyname(slave)} at 115200 baud"), watching
        os.write(master, BY_TITLE["LIGHT_STATUS"] + BY_TITLE["HEARTBEAT"])
        first = json.loads(process.stdout.readline())
        second = json.loads(process.stdout.readline())
        assert (first["type"], second["type"]) == ("LIGHT_STATUS", "HEARTBEAT")
    finally:
        interrupt(process)
        os.close(master)
        os.close(slave)
