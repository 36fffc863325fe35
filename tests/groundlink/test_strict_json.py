"""The node never publishes non-JSON: a non-finite number leaves as null (issue 16, item 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from firmware_host.groundlink.outbox import EVENTS, Outbox, encode_body
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher


def _strict(payload: bytes) -> object:
    """Parse as the ground does: NaN, Infinity and -Infinity are not JSON."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(payload, parse_constant=refuse)


def test_a_non_finite_reading_is_published_as_null(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000)
    stream = StreamPublisher("n1", outbox, Pacer())
    body = {"cap_w": math.inf, "free_w": math.nan, "draw_w": -math.inf, "nested": [math.nan, 1.5]}
    outbox.append("event", body, EVENTS)
    (row,) = outbox.next_batch(10)
    published = _strict(stream.payload(row, session_started=0.0))
    assert isinstance(published, dict)
    assert published["body"] == {"cap_w": None, "free_w": None, "draw_w": None,
                                 "nested": [None, 1.5]}  # fmt: skip
    outbox.close()


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_whatever_a_body_holds_the_outbox_stores_strict_json(value: object) -> None:
    _strict(encode_body({"value": value}))
