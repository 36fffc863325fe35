"""Benchmarks: scripts that print figures; results and the machine go in BENCHMARKS.md."""
