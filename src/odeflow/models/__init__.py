"""Models built on the solver: time-series regression, ODE-Net classifiers, Hamiltonian NNs,
function encoders, neural SDEs."""
from .classifiers import KINDS, ClassifierOutput, ODEClassifier, conv_classifier, count_parameters, mlp_classifier
from .function_encoder import FunctionEncoderODE, finite_difference_velocities
from .hamiltonian import HamiltonianNN, ScalarMLP, SeparableHamiltonianNN
from .ode_block import EulerStack, ODEBlock
from .sde import NeuralSDE
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = ["TimeSeriesODE", "VectorFieldMLP", "KINDS", "ClassifierOutput", "ODEClassifier", "conv_classifier",
           "mlp_classifier", "count_parameters", "ODEBlock", "EulerStack", "HamiltonianNN", "SeparableHamiltonianNN",
           "ScalarMLP", "FunctionEncoderODE", "finite_difference_velocities", "NeuralSDE"]
