"""Models built on the solver: time-series regression, latent ODEs, ODE-RNN and RNN-Δt."""
from .elbo import elbo, iwae, kl_normal_standard, kl_weight, masked_gaussian_log_likelihood, masked_mse
from .latent_ode import LatentODE, LatentOutput
from .ode_solver import ODESolver, disc_opt, opt_disc
from .odernn import ODERNN, RecurrentRegressor, make_ode_rnn, make_rnn_dt
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = ["TimeSeriesODE", "VectorFieldMLP", "LatentODE", "LatentOutput", "ODERNN", "RecurrentRegressor",
           "make_ode_rnn", "make_rnn_dt", "ODESolver", "disc_opt", "opt_disc", "elbo", "iwae",
           "kl_normal_standard", "kl_weight", "masked_gaussian_log_likelihood", "masked_mse"]
