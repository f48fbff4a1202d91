"""Continuous normalizing flows (FFJORD) with RNODE regularization and a learnable end time."""

from .cnf import CNF, CNFStack, check_batch, standard_normal_logprob
from .divergence import (
    divergence_exact,
    divergence_hutchinson,
    jacobian_rows,
    sample_noise,
    trace_and_frobenius_batched,
    trace_and_frobenius_exact,
)
from .end_time import EndTimeOptimizer, end_time_gradient
from .stacked import StackSpec, build_stacked_cnf, evaluate_stack

__all__ = [
    "CNF",
    "CNFStack",
    "check_batch",
    "standard_normal_logprob",
    "divergence_exact",
    "divergence_hutchinson",
    "sample_noise",
    "trace_and_frobenius_exact",
    "trace_and_frobenius_batched",
    "jacobian_rows",
    "EndTimeOptimizer",
    "end_time_gradient",
    "StackSpec",
    "build_stacked_cnf",
    "evaluate_stack",
]
