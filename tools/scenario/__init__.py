"""Whole shoot days on the bench: scenario files, their runner, checks and reports."""
