"""The offload worker's command line, apart from the worker: `cupola --help` lists it
without importing the ASC MHL library (a tenth of a second of start-up)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", type=Path, required=True, help="the camera card's folder")
    parser.add_argument("--camera", required=True, help="the camera's name")
    parser.add_argument("--store", type=Path, required=True, help="onboard storage (MHL root)")
    parser.add_argument("--index", type=Path, required=True, help="the offload index (SQLite)")
    parser.add_argument("--retries", type=int, default=1, help="copies again after a mismatch")
