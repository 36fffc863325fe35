"""`cupola decode --protocol ...`: the foreign protocols' bytes, block by block.

Each protocol's own deframer finds the blocks and says what it dropped; each block is named
and, where the protocol has a body Cupola knows, decoded: 9-pin time and status data, the
widget's labels with the RDM packets inside them, Modbus function codes and the SDM120
floats. Entries have the shape tools/decode.py prints, so the same summary accounts for
every byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

from protocols import enttec, rdm
from protocols import modbus_rtu as mb
from protocols import sony9pin as s9
from protocols.errors import ProtocolError

Direction = Literal["to-device", "from-device"]
PROTOCOLS = ("sony9pin", "enttec-dmx", "modbus-rtu")


class GearDecoder:
    def __init__(self, protocol: str, direction: Direction = "to-device") -> None:
        self.protocol = protocol
        self._s9 = s9.Deframer()
        self._widget = enttec.Deframer()
        self._modbus = mb.Deframer(request=direction == "to-device")
        self._after_drop = False

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        items: list[Any]
        if self.protocol == "sony9pin":
            items = list(self._s9.feed(chunk))
        elif self.protocol == "enttec-dmx":
            items = list(self._widget.feed(chunk))
        else:
            items = list(self._modbus.feed(chunk))
        for item in items:
            yield self._entry(item)

    def _entry(self, item: Any) -> dict[str, Any]:
        if isinstance(item, (s9.Rejected, enttec.Rejected, mb.Rejected)):
            self._after_drop = True
            return {"offset": item.offset, "status": "dropped", "reason": item.reason,
                    "length": len(item.raw), "raw": item.raw.hex()}  # fmt: skip
        entry: dict[str, Any] = {"offset": item.offset, "status": "ok",
                                 "resync": self._after_drop}  # fmt: skip
        self._after_drop = False
        try:
            entry.update(self._body(item))
        except ProtocolError as exc:
            entry["status"] = "malformed"
            entry["error"] = str(exc)
        return entry

    def _body(self, item: Any) -> dict[str, Any]:
        if isinstance(item, s9.Block):
            return {"type": item.name(), "body": _nine_pin_body(item)}
        if isinstance(item, enttec.Message):
            return {"type": item.name(), "body": _widget_body(item)}
        return {"type": f"unit {item.unit} {item.name()}", "body": {"pdu": item.pdu.hex()}}


def _nine_pin_body(block: s9.Block) -> dict[str, Any]:
    cmd = block.command
    if cmd in (s9.Cmd.LTC_TIME_DATA, s9.Cmd.VITC_TIME_DATA, s9.Cmd.TIME_CODE_PRESET):
        return {"timecode": str(s9.decode_time(block.data))}
    if cmd is s9.Cmd.STATUS_DATA:
        status = s9.decode_status(block.data)
        return {f.name: True for f in dataclasses.fields(status) if getattr(status, f.name)}
    if cmd is s9.Cmd.NAK and block.data:
        return {"errors": [e.name for e in s9.NakError if e & block.data[0]]}
    return {"data": block.data.hex()} if block.data else {}


def _widget_body(message: enttec.Message) -> dict[str, Any]:
    label, data = message.label, message.data
    if label == enttec.Label.SEND_DMX and data:
        used = data[1:].rstrip(b"\x00")
        return {"start_code": data[0], "slots": len(data) - 1, "levels": used.hex()}
    if label in (enttec.Label.SEND_RDM, enttec.Label.SEND_RDM_DISCOVERY):
        return {"rdm": rdm.decode(data).describe()}
    if label == enttec.Label.RECEIVED_DMX and len(data) > 1:
        if data[1] == rdm.START_CODE:
            packet = rdm.decode(data[1:])
            return {"status": data[0], "rdm": packet.describe(), "data": packet.data.hex()}
        if data[1] == 0xFE:
            return {
                "status": data[0],
                "discovered": rdm.format_uid(rdm.decode_dub_response(data[1:])),
            }
    if label == enttec.Label.GET_SERIAL and len(data) == 4:
        return {"serial": enttec.decode_serial(data)}
    return {"data": data.hex()} if data else {}


def format_gear_line(entry: dict[str, Any]) -> str:
    offset = f"{entry['offset']:>8}"
    if entry["status"] == "dropped":
        return f"{offset}  !! DROP {entry['reason'].upper():<10} {entry['length']} bytes"
    mark = "~~ RESYNC " if entry.get("resync") else ""
    if entry["status"] == "malformed":
        return f"{offset}  {mark}MALFORMED: {entry['error']}"
    fields = " ".join(f"{k}={v}" for k, v in entry.get("body", {}).items())
    return f"{offset}  {mark}{entry['type']:<24} {fields}"
