"""Counts in words, as people write them: "1 take", "2 takes"."""

from __future__ import annotations


def plural(n: int, noun: str) -> str:
    """The count and its noun (every noun the tools count is regular)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
