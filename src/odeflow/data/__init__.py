"""Data: the seed 000 spiral, time series from CSV, FFJORD toy 2-D densities, irregular series
(periodic toy, long-format CSV, PhysioNet 2012, thinned CO2)."""
from .co2 import load_co2_windows
from .irregular import IrregularBatch, Normalizer, Series, collate, split_extrapolation, split_interpolation
from .long_csv import load_long_csv
from .periodic import make_periodic
from .physionet import load_physionet
from .spiral import make_spiral
from .time_series_csv import load_series_csv
from .toy2d import TOY_DATASETS, sample_toy

__all__ = ["make_spiral", "load_series_csv", "sample_toy", "TOY_DATASETS", "Series", "IrregularBatch", "collate",
           "split_interpolation", "split_extrapolation", "Normalizer", "make_periodic", "load_long_csv",
           "load_physionet", "load_co2_windows"]
