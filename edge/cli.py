"""The ``edge`` command."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="edge",
        description="Edge node (pull-through cache). Serving is not available in this version yet.",
    )


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("edge: no subcommands are available in this version yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
