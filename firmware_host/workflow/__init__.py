"""What the director and crew do: takes, slates, timecode, the shot log, stored sequences."""
