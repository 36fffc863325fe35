"""The faults a bench can inject, by name: here, apart, so `cupola simctl --help` can list
them without importing the simulators."""

# Faults on the cable, applied by EmulatedLink.set_faults.
LINE_FAULTS = ("ber", "drop_rate", "latency_ms", "noise_rate_hz", "noise_burst_bytes", "babble")
# Faults of the device itself.
DEVICE_FAULTS = ("stuck", "slow_ms", "reset", "unplug", "plug", "power", "baud", "cooling")
