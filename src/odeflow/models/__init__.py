"""Models built on the solver: time-series regression, Hamiltonian NNs, function encoders, neural SDEs."""
from .function_encoder import FunctionEncoderODE, finite_difference_velocities
from .hamiltonian import HamiltonianNN, ScalarMLP, SeparableHamiltonianNN
from .sde import NeuralSDE
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = ["TimeSeriesODE", "VectorFieldMLP", "HamiltonianNN", "SeparableHamiltonianNN", "ScalarMLP",
           "FunctionEncoderODE", "finite_difference_velocities", "NeuralSDE"]
