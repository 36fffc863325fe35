"""One agent per configured device: connection lifecycle, polling, liveness, adoption."""
