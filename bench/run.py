"""`make bench`: every benchmark, one after the other, figures on stdout."""

from __future__ import annotations

from bench import codec


def main() -> None:
    codec.main()


if __name__ == "__main__":
    main()
