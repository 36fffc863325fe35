"""Ground and bench tools: the `cupola` command, monitor, command sender, decoder, planner."""
