"""PDU driver: channel measurements and switching."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from firmware_host.link.session import RequestSession
from protocols.catalogue import PDU_CHANNEL_SET, PDU_STATUS
from protocols.messages.common import EMPTY
from protocols.messages.pdu import ChannelSwitch, PduChannel, PduStatus


class PduDriver:
    kind = "pdu"

    def __init__(self, session: RequestSession) -> None:
        self.session = session

    def poll(self) -> Coroutine[Any, Any, PduStatus]:
        """The session's coroutine itself (as `CameraDriver.poll`)."""
        return self.session.call(PDU_STATUS, EMPTY)

    async def switch(self, channel: int, on: bool) -> PduChannel:
        return await self.session.call(PDU_CHANNEL_SET, ChannelSwitch(channel=channel, on=on))
