"""The ground monitor: what flight controllers and the director watch."""
