"""The whole recipe: irregular noisy series -> neural ODE -> regular clean samples -> SINDy."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from torch import Tensor

from ..data.time_series_csv import load_series_csv
from .neural_fit import NeuralFit, NeuralFitConfig, fit_neural_ode
from .sindy import Equations, fit_sindy


@dataclass
class Discovery:
    equations: Equations
    fit: NeuralFit
    t: Tensor
    x: Tensor
    variables: list


def discover_equations(t: Tensor, x: Tensor, variables: list, config: Optional[NeuralFitConfig] = None,
                       n_samples: int = 1000, degree: int = 3, threshold: float = 0.05) -> Discovery:
    """Fit a neural ODE to (t, x), sample it on n_samples regular times, run SINDy on those."""
    fit = fit_neural_ode(t, x, config)
    t_reg, x_reg, xdot_reg = fit.resample(n_samples)
    eq = fit_sindy(t_reg, x_reg, variables, x_dot=xdot_reg, degree=degree, threshold=threshold)
    return Discovery(eq, fit, t, x, list(variables))


def discover_from_csv(path: Union[str, Path], time_column: Optional[str] = None, **kwargs) -> Discovery:
    """As discover_equations, reading a CSV whose first column is time (or ``time_column``)."""
    path = Path(path)
    if time_column is None:
        if not path.is_file():
            raise FileNotFoundError(f"series file {path} does not exist; give a CSV with a header row such as "
                                    f"'t,x,y' (time first, then one column per variable)")
        header = path.read_text().splitlines()[:1]
        if not header or not header[0].strip():
            raise ValueError(f"{path} is empty; expected a header row such as 't,x,y'")
        time_column = header[0].split(",")[0].strip()
    t, x, names = load_series_csv(path, time_column=time_column)
    return discover_equations(t, x, names, **kwargs)
