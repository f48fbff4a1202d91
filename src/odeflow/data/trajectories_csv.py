"""Time series of one or more trajectories from a CSV (long form), for `odeflow discover`.

    t,x,y              or    trajectory,t,x,y
    0.0,1.0,1.0              a,0.0,1.0,1.0
    0.13,1.1,0.96            a,0.13,1.1,0.96
    ...                      b,0.0,2.0,0.5 ...

The time column is `time_column` or the first column that is not the trajectory column; every
other column is a variable. Rows of a trajectory need not be adjacent in the file; within each
trajectory times must be strictly increasing in file order. (Unlike `long_csv`, one row holds
every variable: equation discovery needs fully observed states.)
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .file_checks import check_values, existing_file, read_text


def load_trajectories_csv(
    path: Union[str, Path], time_column: Optional[str] = None, trajectory_column: str = "trajectory"
) -> Tuple[Tensor, Tensor, Tensor, List[str], List[str]]:
    """(t [n], x [n, d], trajectory index [n], variable names, trajectory labels), float64, rows
    grouped by trajectory (in order of first appearance). Raises FileNotFoundError / ValueError
    naming the file, line and column of any problem."""
    path = existing_file(
        path,
        "series file",
        "give a CSV with a header row such as 't,x,y' (time first, then one column per variable; "
        "optional 'trajectory' column)",
    )
    with io.StringIO(read_text(path), newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ValueError(f"{path} is empty; expected a header row such as 't,x,y'")
        header = [h.strip() for h in header]
        has_traj = trajectory_column in header
        if time_column is None:
            time_column = next((h for h in header if h != trajectory_column), None)
        if time_column not in header:
            raise ValueError(
                f"{path}: no time column {time_column!r}; columns are {header} (choose one with --time-column)"
            )
        names = [h for h in header if h not in (time_column, trajectory_column)]
        if not names:
            raise ValueError(f"{path}: no variable columns; columns are {header}")
        ti = header.index(time_column)
        vi = [header.index(c) for c in names]
        ki = header.index(trajectory_column) if has_traj else None
        rows: Dict[str, List[Tuple[int, List[float]]]] = {}
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}")
            label = row[ki].strip() if ki is not None else ""
            parsed = []
            for i in [ti, *vi]:
                cell = row[i].strip()
                try:
                    v = float(cell)
                except ValueError:
                    raise ValueError(
                        f"{path}, line {line_no}, column {header[i]!r}: {cell!r} is not a number "
                        f"(drop or fill missing values)"
                    ) from None
                if not math.isfinite(v):
                    raise ValueError(
                        f"{path}, line {line_no}, column {header[i]!r}: {cell!r} is not finite "
                        f"(drop or fill NaN/inf rows)"
                    )
                parsed.append(v)
            rows.setdefault(label, []).append((line_no, parsed))
    if not rows:
        raise ValueError(f"{path}: no data rows")
    lines_all = [ln for label in rows for ln, _ in rows[label]]
    check_values(
        np.array([r for label in rows for _, r in rows[label]]),
        [time_column, *names],
        str(path),
        lambda i: f"line {lines_all[i]}",
    )
    ts, xs, ids, labels = [], [], [], list(rows)
    for k, label in enumerate(labels):
        lines = [ln for ln, _ in rows[label]]
        data = torch.tensor([r for _, r in rows[label]], dtype=torch.float64)
        t = data[:, 0]
        bad = (t[1:] <= t[:-1]).nonzero()
        if len(bad):
            i = int(bad[0])
            where = f" in trajectory {label!r}" if has_traj else ""
            raise ValueError(
                f"{path}: times must be strictly increasing{where}, but line {lines[i + 1]} has "
                f"t={t[i + 1].item()} after t={t[i].item()} (sort by {time_column!r}, drop duplicates)"
            )
        ts.append(t)
        xs.append(data[:, 1:])
        ids.append(torch.full((len(t),), k, dtype=torch.long))
    return torch.cat(ts), torch.cat(xs), torch.cat(ids), names, labels


def write_trajectories_csv(
    path: Union[str, Path], t: Tensor, x: Tensor, trajectory: Tensor, names: List[str], time_name: str = "t"
) -> Path:
    """Long form: a 'trajectory' column, the time, then one column per variable."""
    if x.dim() != 2 or x.shape[0] != t.shape[0] or trajectory.shape != t.shape or x.shape[1] != len(names):
        raise ValueError(
            f"need t [n], x [n, d], trajectory [n] and d names; got {tuple(t.shape)}, {tuple(x.shape)}, "
            f"{tuple(trajectory.shape)}, {len(names)} names"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trajectory", time_name, *names])
        for k, ti, row in zip(trajectory.tolist(), t.tolist(), x.tolist()):
            w.writerow([k, repr(float(ti)), *(repr(float(v)) for v in row)])
    return path
