"""Simulated devices: protocol handlers bound to physics models."""
