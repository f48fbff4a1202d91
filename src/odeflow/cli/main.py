"""`odeflow` command: demo, check-gradient, train, compare, evaluate, sample, discover."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import check_gradient, demo, discover, evaluate, sample, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odeflow", description="Neural ODEs trained fast and correctly.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, check_gradient, train, evaluate, sample, discover):
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"odeflow {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
