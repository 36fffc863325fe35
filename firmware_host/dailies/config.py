"""The `[dailies]` table: where the cards are mounted, where their copies go, what is sent."""

from __future__ import annotations

from typing import Annotated

import msgspec


class DailiesConfig(msgspec.Struct, forbid_unknown_fields=True):
    store: str = "dailies"  # onboard storage for the verified copies and their ASC MHL history
    cards: dict[str, str] = msgspec.field(default_factory=dict)  # camera: its card's folder
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1  # copies again after a mismatch
    scan_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0  # look for new clips
    proxies: bool = True  # circled takes get a proxy, sent to the ground
    proxy_kbps: Annotated[float, msgspec.Meta(gt=0)] | None = None  # default: [data] proxy_kbps
    proxy_height: Annotated[int, msgspec.Meta(ge=90, le=2160)] = 180
    resend_after_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0  # unacknowledged segment
    chunk_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1_000_000)] = 16_384  # file downlink
