"""Continuous normalizing flows (FFJORD): divergence estimators, CNF blocks and stacks."""
from .cnf import CNF, CNFStack
from .divergence import divergence_exact, divergence_hutchinson, sample_noise

__all__ = ["CNF", "CNFStack", "divergence_exact", "divergence_hutchinson", "sample_noise"]
