"""`odeflow presets`: the shipped config presets, one line each (use with `--config NAME`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the shipped config presets (use one with --config NAME)")
    p.add_argument("--path", action="store_true", help="also print where each preset file is installed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..preset_files import describe_presets, presets_folder

    rows = describe_presets()
    width = max(map(len, rows), default=0)
    for name, (task, line) in rows.items():
        where = f"  [{presets_folder() / (name + '.toml')}]" if args.path else ""
        print(f"{name:<{width}}  {'train ' + task:<13}  {line}{where}")
    print("use one with: odeflow train TASK --config NAME (or --config PATH.toml)")
    return 0
