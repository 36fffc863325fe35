"""Health: yellow/red limits on what devices report, watchdogs on what the daemon runs."""
