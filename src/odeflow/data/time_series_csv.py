"""A user's own time series from a CSV file: one time column and one column per state variable.

Times may be irregular but must be strictly increasing; every value must be a finite number, and
not extreme (see `file_checks.check_values`).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .file_checks import check_values, existing_file, read_text


def load_series_csv(
    path: Union[str, Path],
    time_column: str = "t",
    value_columns: Optional[Sequence[str]] = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor, List[str]]:
    """Read (t [n], values [n, d], value column names) from a CSV with a header row.

    value_columns defaults to every column except the time column.
    Raises FileNotFoundError / ValueError naming the file, row and column of any problem.
    """
    path = existing_file(path, "time-series file", "give a CSV with a header row such as 't,x,y'")
    with io.StringIO(read_text(path), newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected a header row such as 't,x,y'")
        header = [h.strip() for h in header]
        if time_column not in header:
            raise ValueError(
                f"{path}: no time column {time_column!r}; columns are {header} (choose one with --time-column)"
            )
        values = list(value_columns) if value_columns else [h for h in header if h != time_column]
        missing = [c for c in values if c not in header]
        if missing or not values:
            raise ValueError(f"{path}: value column(s) {missing or '(none)'} not found; columns are {header}")
        idx = [header.index(time_column)] + [header.index(c) for c in values]
        rows: List[List[float]] = []
        line_of: List[int] = []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}")
            parsed = []
            for i in idx:
                cell = row[i].strip()
                try:
                    x = float(cell)
                except ValueError:
                    raise ValueError(
                        f"{path}, line {line_no}, column {header[i]!r}: {cell!r} is not a number"
                    ) from None
                if not math.isfinite(x):
                    raise ValueError(f"{path}, line {line_no}, column {header[i]!r}: {cell!r} is not finite")
                parsed.append(x)
            rows.append(parsed)
            line_of.append(line_no)
    if len(rows) < 2:
        raise ValueError(f"{path}: need at least 2 data rows, found {len(rows)}")
    check_values(np.array(rows), [time_column, *values], str(path), lambda i: f"line {line_of[i]}")
    data = torch.tensor(rows, dtype=torch.float64)
    t = data[:, 0]
    bad = (t[1:] <= t[:-1]).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{path}: times must be strictly increasing, but line {line_of[i + 1]} has t={t[i + 1].item()} "
            f"after t={t[i].item()} (sort the file by {time_column!r}, drop duplicates)"
        )
    return t.to(dtype), data[:, 1:].to(dtype), values
