"""Models built on the solver: time-series regression, latent ODEs / ODE-RNN / RNN-Δt, ODE-Net
classifiers, Hamiltonian NNs, function encoders, neural SDEs."""

from .classifiers import KINDS, ClassifierOutput, ODEClassifier, conv_classifier, count_parameters, mlp_classifier
from .elbo import elbo, iwae, kl_normal_standard, kl_weight, masked_gaussian_log_likelihood, masked_mse
from .function_encoder import FunctionEncoderODE, finite_difference_velocities
from .hamiltonian import HamiltonianNN, ScalarMLP, SeparableHamiltonianNN
from .latent_ode import LatentODE, LatentOutput
from .ode_block import EulerStack, ODEBlock
from .ode_solver import ODESolver, disc_opt, opt_disc
from .odernn import ODERNN, RecurrentRegressor, make_ode_rnn, make_rnn_dt
from .sde import NeuralSDE
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = [
    "TimeSeriesODE",
    "VectorFieldMLP",
    "KINDS",
    "ClassifierOutput",
    "ODEClassifier",
    "conv_classifier",
    "mlp_classifier",
    "count_parameters",
    "ODEBlock",
    "EulerStack",
    "HamiltonianNN",
    "SeparableHamiltonianNN",
    "ScalarMLP",
    "FunctionEncoderODE",
    "finite_difference_velocities",
    "NeuralSDE",
    "LatentODE",
    "LatentOutput",
    "ODERNN",
    "RecurrentRegressor",
    "make_ode_rnn",
    "make_rnn_dt",
    "ODESolver",
    "disc_opt",
    "opt_disc",
    "elbo",
    "iwae",
    "kl_normal_standard",
    "kl_weight",
    "masked_gaussian_log_likelihood",
    "masked_mse",
]
