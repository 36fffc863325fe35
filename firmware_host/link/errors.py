"""Link failures, typed so callers can tell a silent device from a vanished port."""

from __future__ import annotations


class LinkError(Exception):
    """Base of link failures."""


class LinkDown(LinkError):
    """The port is closed or vanished; reconnecting is the only remedy."""


class LinkTimeout(LinkError):
    """No reply after every retry; the device may be stuck, off or out of reach."""

    def __init__(self, device: str, request: str, attempts: int, timeout_s: float) -> None:
        super().__init__(
            f"{device}: no reply to {request} after {attempts} attempts "
            f"of {timeout_s * 1000:.0f} ms"
        )
        self.device = device
        self.request = request
