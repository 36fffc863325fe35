"""Message bodies of the device protocol, one module per device class."""
