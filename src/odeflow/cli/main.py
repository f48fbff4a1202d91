"""`odeflow` command: demo, check-gradient, train, compare, evaluate, sample, discover."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import List, Optional

from .. import __version__
from .commands import COMMANDS, first_word


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    """The parser for `argv`: full options for the command named there, a one-line stub for the others.

    Without argv (or with none named) every command is built in full, as tests and docs tools expect.
    """
    parser = argparse.ArgumentParser(prog="odeflow", description="Neural ODEs trained fast and correctly.")
    parser.add_argument("--version", action="version", version=f"odeflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = first_word(argv) if argv is not None else None
    full = argv is None
    for name, (module, help_text) in COMMANDS.items():
        if full or name == chosen:
            command = importlib.import_module(f".{module}", __package__)
            if module == "train":  # `train` and `compare` build their task tables lazily too
                rest = argv[argv.index(name) + 1 :] if argv is not None else None
                command.register_command(sub, name, rest)
            else:
                command.register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, ImportError, OSError) as err:  # OSError: a file that cannot be read or made
        print(f"odeflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT, or SIGTERM outside a training loop (which saves last.pt itself)
        print(f"odeflow {args.command}: interrupted; no results were written for the unfinished work", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm():
    """SIGTERM ends a command like Ctrl-C (within a Python step, no traceback); the Trainer replaces
    this while it trains. Returns the previous handler (None off the main thread)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        return None


if __name__ == "__main__":
    sys.exit(main())
