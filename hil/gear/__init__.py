"""Simulated real gear: the same physics models behind the industry's own serial protocols."""
