"""Why a device went offline, in words the crew reads on the monitor, not pyserial's.

The link layer passes the operating system's and pyserial's text on as it came ("device
reports readiness to read but returned no data (device disconnected or multiple access on
port?)"); this turns the known ones into a short sentence and drops errno numbers.
"""

from __future__ import annotations

import re

# (what pyserial or the OS said, what to say instead); the first match wins.
_PLAIN = (
    ("device reports readiness to read", "cable unplugged or port closed (no data)"),
    ("No such file or directory", "port not found (cable unplugged or wrong port?)"),
    ("Permission denied", "no permission to open the port"),
    ("Could not exclusively lock port", "port in use by another program"),
    ("Device or resource busy", "port in use by another program"),
    ("Input/output error", "input/output error on the port (cable unplugged?)"),
    ("Bad file descriptor", "port closed"),
)  # fmt: skip
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def humanise(reason: str) -> str:
    """`reason` with a known raw cause replaced by plain words; its context ("cannot open
    /dev/x: ", "cam-a: ") is kept."""
    for raw, plain in _PLAIN:
        at = reason.find(raw)
        if at >= 0:
            context = reason[:at]
            errno_at = context.find("[Errno")
            if errno_at >= 0:
                context = context[:errno_at]
            return context + plain
    return _ERRNO.sub("", reason)
