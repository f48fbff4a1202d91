"""How gradients flow through a solve: discretize-optimize or optimize-discretize."""
from .discretize_optimize import DiscretizeOptimize
from .optimize_discretize import OptimizeDiscretize
from .derivative_check import DerivativeCheck, derivative_check, plot_derivative_check

__all__ = ["DiscretizeOptimize", "OptimizeDiscretize", "DerivativeCheck", "derivative_check", "plot_derivative_check"]
