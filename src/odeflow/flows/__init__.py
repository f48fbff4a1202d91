"""Continuous normalizing flows (FFJORD) with RNODE regularization and a learnable end time, trained
by maximum likelihood or by flow matching."""

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
from .evaluation import describe_solver, evaluate_density
from .flow_matching import FlowMatching
from .fm_coupling import ot_permutation
from .fm_paths import OTPath, VPPath
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
    "FlowMatching",
    "OTPath",
    "VPPath",
    "ot_permutation",
    "evaluate_density",
    "describe_solver",
    "EndTimeOptimizer",
    "end_time_gradient",
    "StackSpec",
    "build_stacked_cnf",
    "evaluate_stack",
]
