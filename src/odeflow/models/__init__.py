"""Models built on the solver: time-series regression."""
from .timeseries import TimeSeriesODE, VectorFieldMLP

__all__ = ["TimeSeriesODE", "VectorFieldMLP"]
