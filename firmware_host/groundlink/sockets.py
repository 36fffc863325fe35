"""TCP options for every MQTT connection Cupola makes (the daemon's and the ground tools').

paho leaves Nagle's algorithm on. MQTT sends small packets both ways: a PUBACK, then a command
or a result a moment later. Nagle holds a small packet back while an earlier one is
unacknowledged, and the peer's kernel delays that acknowledgement by up to 40 ms, so the
command, the result or the alarm waits for it. At the cap-cut bench every command result
reached the ground about 45 ms after it was sent, and 2 to 3 cuts in 100 reached the daemon
20-40 ms late. The brokers are told the same (`set_tcp_nodelay true`).
"""

from __future__ import annotations

import socket

NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
