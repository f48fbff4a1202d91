"""Data: the seed 000 spiral, users' own time series from CSV."""
from .spiral import make_spiral
from .time_series_csv import load_series_csv

__all__ = ["make_spiral", "load_series_csv"]
