"""Data: the seed 000 spiral, time series from CSV, FFJORD toy 2-D densities, tabular sets,
classification sets (annuli, digits, image files), physical systems, irregular series
(periodic toy, long-format CSV, PhysioNet 2012, thinned CO2)."""

from .annuli import make_annuli
from .classification import DATASETS as CLASSIFICATION_DATASETS
from .classification import holdout, load_classification
from .co2 import load_co2_windows
from .discovery_systems import KNOWN_SYSTEMS, irregular_series, solve_known, write_series_csv
from .families import FAMILIES, family_trajectories, parameter_grid, sample_parameters
from .hamiltonian_systems import HAMILTONIAN_SYSTEMS, hamiltonian_initial_states, hamiltonian_trajectories
from .irregular import (
    IrregularBatch,
    Normalizer,
    Series,
    collate,
    collate_rows,
    split_extrapolation,
    split_interpolation,
)
from .long_csv import load_long_csv
from .periodic import make_periodic
from .physionet import load_physionet
from .spiral import make_spiral
from .tabular import TabularData, load_tabular
from .time_series_csv import load_series_csv
from .toy2d import TOY_DATASETS, sample_toy
from .trajectories_csv import load_trajectories_csv, write_trajectories_csv

__all__ = [
    "make_spiral",
    "load_series_csv",
    "sample_toy",
    "TOY_DATASETS",
    "TabularData",
    "load_tabular",
    "make_annuli",
    "load_classification",
    "holdout",
    "CLASSIFICATION_DATASETS",
    "HAMILTONIAN_SYSTEMS",
    "hamiltonian_initial_states",
    "hamiltonian_trajectories",
    "FAMILIES",
    "family_trajectories",
    "sample_parameters",
    "parameter_grid",
    "KNOWN_SYSTEMS",
    "irregular_series",
    "solve_known",
    "write_series_csv",
    "Series",
    "IrregularBatch",
    "collate",
    "collate_rows",
    "split_interpolation",
    "split_extrapolation",
    "Normalizer",
    "make_periodic",
    "load_long_csv",
    "load_physionet",
    "load_co2_windows",
    "load_trajectories_csv",
    "write_trajectories_csv",
]
