"""Models built on the solver: time-series regression, ODE-Net classifiers."""
from .classifiers import KINDS, ClassifierOutput, ODEClassifier, conv_classifier, count_parameters, mlp_classifier
from .ode_block import EulerStack, ODEBlock
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = ["TimeSeriesODE", "VectorFieldMLP", "KINDS", "ClassifierOutput", "ODEClassifier", "conv_classifier",
           "mlp_classifier", "count_parameters", "ODEBlock", "EulerStack"]
