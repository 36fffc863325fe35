"""Real gear on the daemon's side: Sony 9-pin recorders, DMX/RDM lights through an Enttec USB
Pro widget, Modbus RTU meters and relay boards, each behind the native driver's interface."""
