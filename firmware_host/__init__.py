"""The onboard daemon: devices, shot log, budgets and the ground link in one asyncio process."""
