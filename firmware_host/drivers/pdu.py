"""PDU driver: channel measurements and switching."""

from __future__ import annotations

from firmware_host.link.session import RequestSession
from protocols.catalogue import PDU_CHANNEL_SET, PDU_STATUS
from protocols.messages.common import Empty
from protocols.messages.pdu import ChannelSwitch, PduChannel, PduStatus


class PduDriver:
    kind = "pdu"

    def __init__(self, session: RequestSession) -> None:
        self.session = session

    async def poll(self) -> PduStatus:
        return await self.session.call(PDU_STATUS, Empty())

    async def switch(self, channel: int, on: bool) -> PduChannel:
        return await self.session.call(PDU_CHANNEL_SET, ChannelSwitch(channel=channel, on=on))
