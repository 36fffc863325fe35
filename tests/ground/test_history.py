"""`cupola history`: the archive as the node sent it, filtered, as CSV, JSON or a plot."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from protocols import alarms, ground
from tests.ground.node_messages import NODE, T0, birth, event, result, telemetry
from tools.archive.rows import SessionRow, StreamRow, Streams
from tools.archive.writer import Writer
from tools.cli import main
from tools.exits import EX_DATAERR, EX_UNAVAILABLE, EX_USAGE

SENT = [
    (ground.topic(NODE, "event"), event(1, T0 + 1, name="take.started", source="cam-a",
                                        scene="7", take=2, take_id=11, cameras=["cam-a"])),
    (ground.topic(NODE, "telemetry"), telemetry(2, T0 + 2, draw_w=120.0, temperature_cdeg=2600)),
    (ground.topic(NODE, "event"), event(3, T0 + 3, name="device.offline", source="key",
                                        severity="warning", historical=True)),
    (ground.topic(NODE, "result"), result(4, T0 + 4, name="light.set", status="rejected")),
    (ground.topic(NODE, "telemetry"), telemetry(5, T0 + 5, draw_w=150.0, temperature_cdeg=2700)),
    (ground.topic(NODE, "event"), event(6, T0 + 9000, name="take.cut", source="cam-a")),
]  # fmt: skip
SPAN = ["--since", str(T0), "--until", str(T0 + 60)]


@pytest.fixture
async def archive(db: str) -> str:
    streams = Streams()
    rows: list[StreamRow | SessionRow] = [
        streams.row(ground.topic(NODE, "birth"), birth(42, 1, T0), T0)
    ]
    rows += [streams.row(topic, payload, T0 + 10) for topic, payload in SENT]
    writer = await Writer.connect(db)
    await writer.write(rows)
    await writer.close()
    return db


def history(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["history", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_gives_the_messages_as_the_node_sent_them(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = history(capsys, "events", "--db", archive, "--json", *SPAN)
    assert status == 0
    got = [json.loads(line) for line in out.splitlines()]
    sent = [json.loads(payload) for topic, payload in SENT[:5] if topic.endswith("event")]
    assert got == sent  # byte-for-byte the same objects (historical flag included)


def test_events_of_one_device_in_a_time_range(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = history(capsys, "events", "--db", archive, "--device", "cam-a", "--csv",
                             "--since", str(T0), "--until", str(T0 + 86400))  # fmt: skip
    table = list(csv.DictReader(io.StringIO(out)))
    assert status == 0
    assert [(r["seq"], r["name"]) for r in table] == [("1", "take.started"), ("6", "take.cut")]


def test_telemetry_fields_as_csv(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = history(capsys, "telemetry", "--db", archive, "--device", "cam-0",
                             "--field", "temperature_cdeg", "--field", "power.draw_w", "--csv",
                             *SPAN)  # fmt: skip
    assert status == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(r["seq"], r["temperature_cdeg"], r["power.draw_w"]) for r in table] == [
        ("2", "2600", "120.0"),
        ("5", "2700", "150.0"),
    ]


def test_commands_and_shot_log(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = history(capsys, "commands", "--db", archive, "--csv", *SPAN)
    commands = list(csv.DictReader(io.StringIO(out)))
    assert [(c["key_id"], c["name"], c["status"]) for c in commands] == [
        ("director-1", "light.set", "rejected")
    ]
    _, out, _ = history(capsys, "shotlog", "--db", archive, "--csv", *SPAN)
    shots = list(csv.DictReader(io.StringIO(out)))
    assert [(s["event"], s["scene"], s["take"], s["cameras"]) for s in shots] == [
        ("take.started", "7", "2", "cam-a")
    ]


def test_several_fields_on_one_plot(
    archive: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chart = tmp_path / "power.png"
    status, _, err = history(capsys, "telemetry", "--db", archive, "--field", "power.draw_w",
                             "--field", "power.free_w", "--plot", str(chart), *SPAN)  # fmt: skip
    assert status == 0, err
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 samples" in err


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["--db", "postgresql://nobody@127.0.0.1:1/none"], EX_UNAVAILABLE, "cannot reach"),
        (["--db", "host=x port=notaport ==="], EX_USAGE, "not a PostgreSQL URL"),
        (
            ["--db", "postgresql://x/y", "--since", "2026-01-02", "--until", "2026-01-01"],
            EX_USAGE,
            "--since must be before",
        ),
        (["--db", "postgresql://x/y", "--plot", "x.png"], EX_USAGE, "draws telemetry"),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], status: int, says: str
) -> None:
    code, _, err = history(capsys, "events", *args)
    assert code == status
    assert says in err and len(err.splitlines()) == 1


def test_archive_refuses_a_bad_database_url(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["archive", "--broker", "mqtt://127.0.0.1:1", "--db", "host=x port=y ==="])
    err = capsys.readouterr().err
    assert code == EX_USAGE and "not a PostgreSQL URL" in err and len(err.splitlines()) == 1


def test_a_database_without_an_archive(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = history(capsys, "events", "--db", db)
    assert code == EX_DATAERR and "holds no archive" in err


async def test_alarm_history_holds_the_nodes_alarms_and_the_consoles_actions(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shelve = alarms.AlarmAction(v=1, node=NODE, source="cam-a", what="camera.temperature",
                                action="shelve", by="director-1", at=T0 + 5, raised_at=T0 + 1,
                                until=T0 + 1805, reason="lamp swap")  # fmt: skip
    streams = Streams()
    messages = [
        (ground.topic(NODE, "event"), event(1, T0 + 1, name="limit.camera.temperature.red",
                                            source="cam-a", severity="critical")),
        (ground.topic(NODE, "event"), event(2, T0 + 2, name="take.started", source="cam-a")),
        (alarms.topic(NODE, "cam-a", "camera.temperature", "shelve"), alarms.encode(shelve)),
        (alarms.topic(NODE, "cam-a", "camera.temperature", "shelve"), alarms.encode(shelve)),
    ]  # fmt: skip
    writer = await Writer.connect(db)
    assert await writer.write([streams.row(t, p, T0 + 10) for t, p in messages]) == 3
    await writer.close()
    status, out, err = history(capsys, "alarms", "--db", db, "--csv", *SPAN)
    assert status == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert status == 0
    assert [(r["what"], r["alarm"], r["level"], r["by"], r["message"]) for r in table] == [
        (
            "event",
            "limit.camera.temperature.red",
            "red",
            "",
            "limit.camera.temperature.red on cam-a",
        ),
        ("shelve", "camera.temperature", "", "director-1", "lamp swap"),
    ]
