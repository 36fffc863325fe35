"""Each configured device's agent: a native Cupola device's, or real gear's by its protocol.

Real gear's drivers and their libraries (pymodbus, RDM, Sony 9-pin) are imported when the
first such device is configured, not before: a node of native devices starts without them
(about a tenth of the daemon's import).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from firmware_host.config import DeviceConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.workflow.timecode import ReferenceClock

if TYPE_CHECKING:
    from firmware_host.gear.enttec import WidgetRegistry


class AgentFactory:
    """One per daemon: DMX lights on one Enttec widget share it through its registry."""

    def __init__(self) -> None:
        self._widgets: WidgetRegistry | None = None

    def make(
        self,
        config: DeviceConfig,
        bus: EventBus,
        reference: ReferenceClock,
        on_update: Callable[[DeviceAgent], None],
        **kwargs: Any,
    ) -> DeviceAgent:
        if config.protocol == "native":
            return DeviceAgent(config, bus, reference, on_update, **kwargs)
        from firmware_host.gear.agent import GearAgent
        from firmware_host.gear.enttec import WidgetRegistry

        if self._widgets is None:
            self._widgets = WidgetRegistry()
        return GearAgent(config, bus, reference, on_update, widgets=self._widgets, **kwargs)
