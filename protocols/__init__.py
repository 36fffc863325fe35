"""Wire protocols: the serial device protocol (frames, messages) and the ground link schema.

Nothing here does I/O; every other package builds on these definitions.
"""
