"""Command signatures: any change to any signed field is detected."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from protocols.ground import Role, canonical, signature, signature_valid
from tools.ground_client import sign_command
from tools.keys import create_key

KEY = create_key(Role.DIRECTOR, "director-1")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(args=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_a_signed_command_verifies(args: dict[str, Any]) -> None:
    command = sign_command(KEY, "light.set", args)
    assert signature_valid(KEY.secret_bytes(), command)
    assert canonical(command) == canonical({**command, "sig": "anything"})


@given(
    field=st.sampled_from(
        ["id", "name", "args", "role", "key_id", "counter", "issued_at_ms", "expires_at_ms", "v"]
    ),
    value=json_values,
)
def test_changing_any_field_breaks_the_signature(field: str, value: Any) -> None:
    command = sign_command(KEY, "record", {"scene": "1", "take": 1})
    if command[field] == value:
        return
    tampered = {**command, field: value}
    assert not signature_valid(KEY.secret_bytes(), tampered)


def test_another_key_cannot_sign_for_this_one() -> None:
    other = create_key(Role.DIRECTOR, "director-1")
    command = sign_command(KEY, "cut", {})
    command["sig"] = signature(other.secret_bytes(), command)
    assert not signature_valid(KEY.secret_bytes(), command)


@given(sig=json_values)
def test_any_claimed_signature_is_checked_never_raised(sig: Any) -> None:
    command = {**sign_command(KEY, "cut", {}), "sig": sig}  # "é" * 64 raised TypeError
    assert not signature_valid(KEY.secret_bytes(), command)
