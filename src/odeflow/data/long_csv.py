"""Irregular multivariate series from a long-format CSV: one row per observed value.

    series,time,variable,value
    a,0.0,x,1.3
    a,0.4,y,-0.2
    b,0.1,x,0.7

Series and variable names are free text; times are numbers; a (series, time, variable) may
appear once. Variables a series never observes are masked. Errors name the file and line.
An optional fifth column `label` (free text, the same on every row of a series) gives each
series a class: `load_labelled_long_csv` returns them; `load_long_csv` ignores it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from .file_checks import refuse_folder
from .irregular import Series

COLUMNS = ("series", "time", "variable", "value")
LABEL = "label"


def load_long_csv(path: Union[str, Path], dtype: torch.dtype = torch.float32) -> Tuple[List[Series], List[str]]:
    """(series in order of first appearance, variable names sorted) from a long-format CSV."""
    series, variables, _ = _read(Path(path), dtype, need_label=False)
    return series, variables


def load_labelled_long_csv(
    path: Union[str, Path], dtype: torch.dtype = torch.float32
) -> Tuple[List[Series], List[str], List[str]]:
    """(series with label = class index, variable names sorted, class names sorted) from a
    long-format CSV with the extra column `label` (one class per series)."""
    series, variables, labels = _read(Path(path), dtype, need_label=True)
    assert labels is not None
    classes = sorted(set(labels.values()))
    if len(classes) < 2:
        raise ValueError(f"{path}: column 'label' has {len(classes)} distinct class(es); a classifier needs >= 2")
    index = {c: i for i, c in enumerate(classes)}
    return [Series(s.times, s.values, s.mask, float(index[labels[s.name]]), s.name) for s in series], variables, classes


def _read(path: Path, dtype: torch.dtype, need_label: bool) -> Tuple[List[Series], List[str], Optional[Dict[str, str]]]:
    refuse_folder(path, "series file", f"give a CSV with header '{','.join(COLUMNS)}'")
    if not path.is_file():
        raise FileNotFoundError(
            f"series file {path} does not exist; expected a CSV with header "
            f"'{','.join(COLUMNS)}' (one row per observed value)"
        )
    rows: Dict[str, Dict[Tuple[float, str], float]] = {}
    where: Dict[Tuple[str, float, str], int] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected the header '{','.join(COLUMNS)}'")
        header = [h.strip().lower() for h in header]
        has_label = tuple(header) == COLUMNS + (LABEL,)
        if tuple(header) != COLUMNS and not has_label:
            raise ValueError(
                f"{path}: header is {header}; expected exactly {list(COLUMNS)} (long format: "
                f"one row per observed value), optionally followed by '{LABEL}'"
            )
        if need_label and not has_label:
            raise ValueError(
                f"{path}: no '{LABEL}' column; a classifier needs the header "
                f"'{','.join(COLUMNS + (LABEL,))}' (the class of each series on its rows)"
            )
        width = len(header)
        labels: Dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != width:
                raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {width} ({','.join(header)})")
            name, t_text, var, v_text = (c.strip() for c in row[:4])
            if has_label:
                label = row[4].strip()
                if not label:
                    raise ValueError(f"{path}, line {line}: empty '{LABEL}' (every row needs its series' class)")
                if labels.setdefault(name, label) != label:
                    raise ValueError(
                        f"{path}, line {line}: series {name!r} has label {label!r} here but "
                        f"{labels[name]!r} earlier; a series has one label"
                    )
            if not name or not var:
                raise ValueError(f"{path}, line {line}: empty series or variable name")
            numbers = []
            for col, text in (("time", t_text), ("value", v_text)):
                try:
                    x = float(text)
                except ValueError:
                    raise ValueError(f"{path}, line {line}, column {col!r}: {text!r} is not a number") from None
                if not math.isfinite(x):
                    raise ValueError(
                        f"{path}, line {line}, column {col!r}: {text!r} is not finite "
                        f"(leave missing values out instead of writing NaN)"
                    )
                numbers.append(x)
            t, v = numbers
            key = (name, t, var)
            if key in where:
                raise ValueError(
                    f"{path}, line {line}: series {name!r} has variable {var!r} at time {t} "
                    f"already (line {where[key]}); keep one value per (series, time, variable)"
                )
            where[key] = line
            rows.setdefault(name, {})[(t, var)] = v
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    variables = sorted({var for obs in rows.values() for _, var in obs})
    column_of = {v: j for j, v in enumerate(variables)}
    out: List[Series] = []
    for name, obs in rows.items():
        times = sorted({t for t, _ in obs})
        row_of = {t: i for i, t in enumerate(times)}
        values = torch.zeros(len(times), len(variables), dtype=torch.float64)
        mask = torch.zeros_like(values)
        for (t, var), v in obs.items():
            values[row_of[t], column_of[var]] = v
            mask[row_of[t], column_of[var]] = 1.0
        out.append(
            Series(torch.tensor(times, dtype=torch.float64).to(dtype), values.to(dtype), mask.to(dtype), name=name)
        )
    return out, variables, (labels if has_label else None)
