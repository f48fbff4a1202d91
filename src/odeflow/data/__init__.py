"""Data: the seed 000 spiral, time series from CSV, FFJORD toy 2-D densities, tabular sets."""
from .spiral import make_spiral
from .time_series_csv import load_series_csv
from .tabular import TabularData, load_tabular
from .toy2d import TOY_DATASETS, sample_toy

__all__ = ["make_spiral", "load_series_csv", "sample_toy", "TOY_DATASETS", "TabularData", "load_tabular"]
