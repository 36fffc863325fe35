"""A DMX512 LED fixture with an optional RDM responder, over the native light's physics.

DMX slots set the look through the fixture's personality (the same file the daemon uses);
the LightModel turns that into output, draw and heat exactly as for a native panel. A fixture
with RDM answers discovery, device info, labels, its start address, two sensors (LED board
temperature, input power) and status messages (over temperature while folding back); a
DMX-only fixture answers nothing and reports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.models.light import LightModel
from protocols import rdm
from protocols.dmx_personality import Personality

SENSOR_TEMPERATURE = 0
SENSOR_POWER = 1
MANUFACTURER = "Cupola Sim"
SUPPORTED = (
    rdm.Pid.DEVICE_MODEL_DESCRIPTION,
    rdm.Pid.MANUFACTURER_LABEL,
    rdm.Pid.DEVICE_LABEL,
    rdm.Pid.STATUS_MESSAGES,
    rdm.Pid.SENSOR_DEFINITION,
    rdm.Pid.SENSOR_VALUE,
)


@dataclass
class _Extremes:
    lowest: int | None = None
    highest: int | None = None

    def see(self, value: int) -> tuple[int, int]:
        self.lowest = value if self.lowest is None else min(self.lowest, value)
        self.highest = value if self.highest is None else max(self.highest, value)
        return self.lowest, self.highest


class DmxFixture:
    """One fixture on the widget's DMX line."""

    def __init__(
        self,
        name: str,
        model: LightModel,
        personality: Personality,
        address: int,
        uid: int | None,
    ) -> None:
        self.name = name
        self.model = model
        self.personality = personality
        self.address = address  # 1-based start address
        self.uid = uid  # None: DMX only, no RDM responder
        self.label = name
        self.muted = False
        self.identify = False
        self.levels = bytes(personality.footprint)
        self.frames_seen = 0
        self._extremes = {SENSOR_TEMPERATURE: _Extremes(), SENSOR_POWER: _Extremes()}
        model.set_on(True)

    @property
    def powered(self) -> bool:
        return self.model.powered

    def draw_w(self) -> float:
        return self.model.draw_w()

    def set_powered(self, powered: bool) -> None:
        self.model.set_powered(powered)
        if powered:
            self.model.set_on(True)
            self.muted = False

    # -- DMX --------------------------------------------------------------------------------

    def dmx(self, slots: bytes) -> None:
        """A null-start-code frame: slot 1 is slots[0]."""
        if not self.model.powered:
            return
        mine = slots[self.address - 1 : self.address - 1 + self.personality.footprint]
        self.frames_seen += 1
        if mine == self.levels:
            return
        self.levels = mine
        intensity, cct = self.personality.look(mine)
        self.model.set_level(round(intensity), cct, 0)

    # -- RDM --------------------------------------------------------------------------------

    def answers_rdm(self) -> bool:
        return self.uid is not None and self.model.powered

    def in_branch(self, lower: int, upper: int) -> bool:
        return self.answers_rdm() and not self.muted and lower <= (self.uid or 0) <= upper

    def respond(self, request: rdm.Packet) -> rdm.Packet | None:
        """The answer to a request addressed to this fixture (or broadcast), None if none is due."""
        if not self.answers_rdm():
            return None
        broadcast = request.destination in (rdm.BROADCAST, (self.uid or 0) | 0xFFFF_FFFF)
        if request.destination != self.uid and not broadcast:
            return None
        answer = self._answer(request)
        return None if broadcast else answer

    def _answer(self, request: rdm.Packet) -> rdm.Packet:
        cc, pid, data = request.command_class, request.pid, request.data
        if cc == rdm.CommandClass.DISCOVERY:
            if pid == rdm.Pid.DISC_MUTE:
                self.muted = True
            elif pid == rdm.Pid.DISC_UN_MUTE:
                self.muted = False
            return rdm.response_to(request, b"\x00\x00")
        if request.sub_device not in (0, 0xFFFF):
            return rdm.response_to(request, nack=rdm.Nack.SUB_DEVICE_OUT_OF_RANGE)
        if cc == rdm.CommandClass.GET:
            return self._get(request, pid, data)
        if cc == rdm.CommandClass.SET:
            return self._set(request, pid, data)
        return rdm.response_to(request, nack=rdm.Nack.UNSUPPORTED_COMMAND_CLASS)

    def _get(self, request: rdm.Packet, pid: int, data: bytes) -> rdm.Packet:
        m = self.model
        m.advance()
        if pid == rdm.Pid.DEVICE_INFO:
            info = rdm.DeviceInfo(
                model_id=0x0100 + self.personality.footprint,
                footprint=self.personality.footprint,
                start_address=self.address,
                sensor_count=2,
            )
            return rdm.response_to(request, rdm.encode_device_info(info))
        if pid == rdm.Pid.SUPPORTED_PARAMETERS:
            return rdm.response_to(request, b"".join(int(p).to_bytes(2, "big") for p in SUPPORTED))
        texts = {
            rdm.Pid.DEVICE_MODEL_DESCRIPTION: m.params.model,
            rdm.Pid.MANUFACTURER_LABEL: MANUFACTURER,
            rdm.Pid.DEVICE_LABEL: self.label,
            rdm.Pid.SOFTWARE_VERSION_LABEL: m.params.firmware,
        }
        if pid in texts:
            return rdm.response_to(request, texts[rdm.Pid(pid)].encode("ascii")[:32])
        if pid == rdm.Pid.DMX_START_ADDRESS:
            return rdm.response_to(request, self.address.to_bytes(2, "big"))
        if pid == rdm.Pid.IDENTIFY_DEVICE:
            return rdm.response_to(request, bytes([self.identify]))
        if pid in (rdm.Pid.SENSOR_DEFINITION, rdm.Pid.SENSOR_VALUE):
            if len(data) != 1:
                return rdm.response_to(request, nack=rdm.Nack.FORMAT_ERROR)
            if data[0] not in self._extremes:
                return rdm.response_to(request, nack=rdm.Nack.DATA_OUT_OF_RANGE)
            return rdm.response_to(request, self._sensor(pid, data[0]))
        if pid == rdm.Pid.STATUS_MESSAGES:
            return rdm.response_to(request, rdm.encode_status_messages(self.status_messages()))
        return rdm.response_to(request, nack=rdm.Nack.UNKNOWN_PID)

    def _set(self, request: rdm.Packet, pid: int, data: bytes) -> rdm.Packet:
        if pid == rdm.Pid.DMX_START_ADDRESS:
            address = int.from_bytes(data, "big") if len(data) == 2 else 0
            if not 1 <= address <= 513 - self.personality.footprint:
                return rdm.response_to(request, nack=rdm.Nack.DATA_OUT_OF_RANGE)
            self.address = address
            return rdm.response_to(request)
        if pid == rdm.Pid.DEVICE_LABEL:
            self.label = data.decode("ascii", "replace")[:32]
            return rdm.response_to(request)
        if pid == rdm.Pid.IDENTIFY_DEVICE and len(data) == 1:
            self.identify = bool(data[0])
            return rdm.response_to(request)
        return rdm.response_to(request, nack=rdm.Nack.UNSUPPORTED_COMMAND_CLASS)

    def sensor_reading(self, sensor: int) -> int:
        m = self.model
        return round(m.temperature_c) if sensor == SENSOR_TEMPERATURE else round(m.draw_w())

    def _sensor(self, pid: int, sensor: int) -> bytes:
        m = self.model
        if pid == rdm.Pid.SENSOR_DEFINITION:
            if sensor == SENSOR_TEMPERATURE:
                definition = rdm.SensorDefinition(
                    sensor,
                    rdm.SensorType.TEMPERATURE,
                    rdm.Unit.CENTIGRADE,
                    -40,
                    150,
                    round(m.params.ambient_c),
                    round(m.params.foldback_start_c),
                    "LED board",
                )
            else:
                definition = rdm.SensorDefinition(
                    sensor,
                    rdm.SensorType.POWER,
                    rdm.Unit.WATT,
                    0,
                    round(m.params.max_w * 2),
                    0,
                    round(m.params.max_w),
                    "Input power",
                )
            return rdm.encode_sensor_definition(definition)
        value = self.sensor_reading(sensor)
        lowest, highest = self._extremes[sensor].see(value)
        return rdm.encode_sensor_value(rdm.SensorValue(sensor, value, lowest, highest))

    def status_messages(self) -> list[rdm.StatusMessage]:
        m = self.model
        if m.temperature_c >= m.params.foldback_start_c:
            return [
                rdm.StatusMessage(
                    rdm.StatusType.WARNING,
                    rdm.StatusId.OVERTEMP,
                    SENSOR_TEMPERATURE,
                    round(m.temperature_c),
                )
            ]
        return []
