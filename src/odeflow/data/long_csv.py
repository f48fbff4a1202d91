"""Irregular multivariate series from a long-format CSV: one row per observed value.

    series,time,variable,value
    a,0.0,x,1.3
    a,0.4,y,-0.2
    b,0.1,x,0.7

Series and variable names are free text; times are numbers; a (series, time, variable) may
appear once. Variables a series never observes are masked. Errors name the file and line.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Tuple, Union

import torch

from .irregular import Series

COLUMNS = ("series", "time", "variable", "value")


def load_long_csv(path: Union[str, Path], dtype: torch.dtype = torch.float32) -> Tuple[List[Series], List[str]]:
    """(series in order of first appearance, variable names sorted) from a long-format CSV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"series file {path} does not exist; expected a CSV with header "
                                f"'{','.join(COLUMNS)}' (one row per observed value)")
    rows: Dict[str, Dict[Tuple[float, str], float]] = {}
    where: Dict[Tuple[str, float, str], int] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected the header '{','.join(COLUMNS)}'")
        header = [h.strip().lower() for h in header]
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: header is {header}; expected exactly {list(COLUMNS)} (long format: "
                             f"one row per observed value)")
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}, line {line}: {len(row)} fields, expected 4 ({','.join(COLUMNS)})")
            name, t_text, var, v_text = (c.strip() for c in row)
            if not name or not var:
                raise ValueError(f"{path}, line {line}: empty series or variable name")
            numbers = []
            for col, text in (("time", t_text), ("value", v_text)):
                try:
                    x = float(text)
                except ValueError:
                    raise ValueError(f"{path}, line {line}, column {col!r}: {text!r} is not a number") from None
                if not math.isfinite(x):
                    raise ValueError(f"{path}, line {line}, column {col!r}: {text!r} is not finite "
                                     f"(leave missing values out instead of writing NaN)")
                numbers.append(x)
            t, v = numbers
            key = (name, t, var)
            if key in where:
                raise ValueError(f"{path}, line {line}: series {name!r} has variable {var!r} at time {t} "
                                 f"already (line {where[key]}); keep one value per (series, time, variable)")
            where[key] = line
            rows.setdefault(name, {})[(t, var)] = v
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    variables = sorted({var for obs in rows.values() for _, var in obs})
    col = {v: j for j, v in enumerate(variables)}
    out: List[Series] = []
    for name, obs in rows.items():
        times = sorted({t for t, _ in obs})
        row_of = {t: i for i, t in enumerate(times)}
        values = torch.zeros(len(times), len(variables), dtype=torch.float64)
        mask = torch.zeros_like(values)
        for (t, var), v in obs.items():
            values[row_of[t], col[var]] = v
            mask[row_of[t], col[var]] = 1.0
        out.append(Series(torch.tensor(times, dtype=torch.float64).to(dtype), values.to(dtype), mask.to(dtype),
                          name=name))
    return out, variables
