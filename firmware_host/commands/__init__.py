"""Operator commands: one dispatcher, typed argument schemas, a clear result for every command."""
