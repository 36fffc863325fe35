"""Typed async APIs over the catalogue, one class per device kind; no policy here."""
