"""Physics of simulated hardware: pure state machines advanced by a clock, no I/O."""
