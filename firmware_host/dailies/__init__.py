"""Dailies: clip files offloaded and verified, their chain of custody, files to the ground."""
