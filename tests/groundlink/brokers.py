"""Brokers configured from the files shipped in the repo: the real ACLs and bridge rules."""

from __future__ import annotations

import re
from pathlib import Path

from hil.broker import Mosquitto, TlsFiles

ROOT = Path(__file__).resolve().parents[2]
GROUND_ACL = ROOT / "tools" / "broker" / "ground.acl"
ONBOARD_ACL = ROOT / "firmware_host" / "broker" / "onboard.acl"
ONBOARD_CONF = ROOT / "firmware_host" / "broker" / "onboard.conf"
NODE = "iss-film"
BRIDGE_STATE = "$SYS/broker/connection/iss-film-bridge/state"


def acl_users(path: Path) -> list[str]:
    return re.findall(r"^user (\S+)$", path.read_text(), re.M)


def passwords(path: Path) -> dict[str, str]:
    return {user: f"pw-{user}" for user in acl_users(path)}


def ground_broker(workdir: Path, tls: TlsFiles | None = None, port: int | None = None) -> Mosquitto:
    return Mosquitto(
        workdir / "ground",
        users=passwords(GROUND_ACL),
        acl=GROUND_ACL.read_text(),
        tls=tls,
        persistence=True,
        port=port,
        name="ground",
    )


def bridge_section(ground: Mosquitto, ca: Path | None) -> str:
    """The shipped onboard bridge, pointed at a test ground broker and reconnecting fast."""
    text = ONBOARD_CONF.read_text()
    section = text[text.index("connection ground") :]
    replacements = {
        "address": f"127.0.0.1:{ground.port}",
        "remote_password": ground.users["bridge-iss-film"],
        "restart_timeout": "1 1",
        "keepalive_interval": "2",
    }
    lines = []
    for line in section.splitlines():
        key = line.split(" ", 1)[0]
        if key == "bridge_cafile":
            if ca is not None:
                lines.append(f"bridge_cafile {ca}")
            continue
        lines.append(f"{key} {replacements[key]}" if key in replacements else line)
    return "\n".join(lines) + "\n"


def onboard_broker(workdir: Path, ground: Mosquitto, ca: Path | None) -> Mosquitto:
    return Mosquitto(
        workdir / "onboard",
        users=passwords(ONBOARD_ACL),
        acl=ONBOARD_ACL.read_text(),
        persistence=True,
        extra_config=bridge_section(ground, ca),
        name="onboard",
    )
