"""`odeflow train <task>` (one module per task) and `odeflow compare timeseries`."""
from __future__ import annotations

import argparse

from . import (train_classify, train_cnf, train_function_encoder, train_hamiltonian, train_image, train_latent,
               train_sde, train_tabular, train_timeseries)

# One line per task command: each module has register(train_subparsers).
TASK_COMMANDS = [
    train_timeseries,
    train_cnf,
    train_tabular,
    train_classify,
    train_hamiltonian,
    train_function_encoder,
    train_sde,
    train_image,
    train_latent,
]


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (see `odeflow train TASK --help`)").add_subparsers(
        dest="task", required=True)
    for module in TASK_COMMANDS:
        module.register(train)
    compare = sub.add_parser("compare", help="compare gradient modes").add_subparsers(dest="task", required=True)
    train_timeseries.register_compare(compare)
