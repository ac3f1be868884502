"""``python3 -m automator.sync``: the sync verb on its own, until ``automator/cli.py`` wires it."""

from __future__ import annotations

import argparse
import sys

from automator.sync.command import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="automator sync", description="Keep a cluster equal to a git branch.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
