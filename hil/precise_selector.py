"""An epoll selector whose waits end on time, to the microsecond, for the simulator's loop.

The emulated cables pace bytes with timers a few hundred microseconds apart. asyncio's
EpollSelector rounds every wait up to a whole millisecond (epoll_wait counts milliseconds),
which alone would add 1-2 ms to a round trip that takes 2.8 ms on the wire at 115,200 baud.
select() waits to the microsecond, but costs the kernel and Python a pass over every
descriptor on each wait: at 64 devices the simulator waits thousands of times a second, and
select() was a quarter of its CPU. Here epoll waits on the descriptors (cost grows with what
is ready, not with what is open) and a timerfd armed to the deadline, in nanoseconds, ends the
wait on time. The timerfd is edge-triggered, so an expiry wakes the wait once and nothing needs
reading it; it is never handed to the loop.

A process that sleeps still wakes late: on a virtual machine an idle core is handed back to the
host, and getting it back costs tens of microseconds a wake-up. A bench may ask for waits
shorter than `spin_below_s` to be spun instead (epoll asked again and again, never blocking,
until the deadline or a ready descriptor), as a device's UART is punctual; it costs a core while
it spins, so the benches of many devices leave it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import selectors
import sys
import time

log = logging.getLogger(__name__)

_CLOCK_MONOTONIC = 1  # the clock asyncio's loop.time() reads
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if not hasattr(libc, "timerfd_create"):
        return None
    libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.timerfd_settime.argtypes = (
        ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.POINTER(_Itimerspec)
    )  # fmt: skip
    return libc


_LIBC = _libc()


class PreciseEpollSelector(selectors.EpollSelector):
    """EpollSelector whose `select(timeout)` returns within microseconds of `timeout`."""

    def __init__(self, spin_below_s: float = 0.0) -> None:
        if _LIBC is None:
            raise OSError("timerfd is not available on this system")
        super().__init__()
        timer = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if timer < 0:
            errno = ctypes.get_errno()
            super().close()
            raise OSError(errno, f"timerfd_create: {os.strerror(errno)}")
        self._timer = timer
        self._spin_below_s = spin_below_s
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._settime = _LIBC.timerfd_settime
        # registered on the epoll object itself, not as a key: the loop never sees it
        epoll: select.epoll = self._selector  # type: ignore[attr-defined]
        epoll.register(timer, select.EPOLLIN | select.EPOLLET)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and 0 < timeout < self._spin_below_s:
            deadline = time.monotonic() + timeout
            while not (ready := super().select(0)) and time.monotonic() < deadline:
                pass
            return ready
        if timeout is not None and timeout > 0:
            # One shot at the deadline; re-arming replaces an earlier wait's timer, and one
            # left over from a wait that ended early only wakes a later wait once, for nothing.
            # The millisecond bound epoll itself is given stays as a backstop.
            value = self._spec.it_value
            value.tv_sec, value.tv_nsec = divmod(max(1, int(timeout * 1e9)), 1_000_000_000)
            self._settime(self._timer, 0, self._spec_ref, None)
        return super().select(timeout)  # the timerfd maps to no key: never reported

    def close(self) -> None:
        if self._timer >= 0:
            os.close(self._timer)
            self._timer = -1
        super().close()


def precise_selector(spin_below_s: float = 0.0) -> selectors.BaseSelector:
    """The precise epoll selector where the system has timerfd and lets us make one (a
    sandbox may refuse the call); select() elsewhere (which never spins)."""
    if _LIBC is not None:
        try:
            return PreciseEpollSelector(spin_below_s)
        except OSError as exc:
            log.warning("no timerfd (%s): the simulator waits with select()", exc)
    return selectors.SelectSelector()
