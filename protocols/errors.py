"""Typed protocol errors: the only exceptions a parser in this package may raise."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised while building or parsing protocol data."""


class FramingError(ProtocolError):
    """A byte sequence between delimiters is not a valid frame."""


class MessageError(ProtocolError):
    """A frame is valid but its body is not a valid message of its type."""


class UnknownMessageType(MessageError):
    """The frame names a message type this side does not implement."""

    def __init__(self, code: int, kind: str) -> None:
        super().__init__(f"unknown {kind} message type 0x{code:02X}")
        self.code = code


class FieldValueError(MessageError):
    """A field holds a value outside its documented range or set."""

    def __init__(self, record: str, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{record}.{field} = {value!r} is not allowed; expected {allowed}")
        self.record = record
        self.field = field
        self.value = value
