"""The link layer: one serial port, request/response by sequence number, retries, statistics."""
