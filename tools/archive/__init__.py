"""The ground archive: every node message in PostgreSQL, shared by every console (GROUND.md)."""
