"""A table of the user's own for density estimation: `--data PATH.csv|PATH.npy|PATH.parquet`.

Every column must be a numeric feature with a density: columns that are not numbers, that are
constant (no density at all) or that hold NaN/inf are reported together, by name, with the fix;
a value that overflows when standardized or is extreme is refused with its row and column
(`file_checks.check_values`). A folder, an empty or header-only file, a file that is not UTF-8
or not parquet are each named as such.
The rows are split 80/10/10 by a seeded permutation (train/validation/test) and standardized
by the training split's mean and standard deviation, so the flow sees unit-scale features.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from .file_checks import check_values, existing_file, load_npy, read_text
from .tabular_data import TabularData

TABLE_SUFFIXES: Tuple[str, ...] = (".csv", ".npy", ".parquet")
MIN_ROWS = 10


def is_table_path(name: object) -> bool:
    """True when `name` names a file of a supported kind (by its suffix)."""
    return isinstance(name, (str, Path)) and Path(str(name)).suffix.lower() in TABLE_SUFFIXES


def _read(path: Path) -> Tuple[np.ndarray, List[str], List[str]]:
    """(numeric values [n, d], their column names, names of the non-numeric columns)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = load_npy(path)
        if arr.ndim != 2:
            raise ValueError(
                f"{path}: a table needs a 2-D array [rows, columns]; got shape {arr.shape}. "
                "Reshape it (e.g. x.reshape(len(x), -1)) and save it again"
            )
        names = [f"column {j}" for j in range(arr.shape[1])]
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(
                f"{path}: the array holds {arr.dtype}, not real numbers; save a float array "
                "(np.save(path, x.astype(float)))"
            )
        return arr.astype(np.float64), names, []
    import pandas as pd

    if suffix == ".csv":
        import io

        text = read_text(path)
        if not text.strip():
            raise ValueError(f"{path} is empty; expected a header row of column names, then one row per sample")
        import warnings

        try:
            with warnings.catch_warnings():
                # index_col=False: a row longer than the header is an error, never a silent index column
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(io.StringIO(text), index_col=False)
        except pd.errors.ParserWarning:
            raise ValueError(
                f"{path}: some rows have more fields than the header has names; give every column a name "
                "(or remove the extra fields)"
            ) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ValueError(f"{path}: not a readable CSV table ({str(err).strip()}); check its delimiters") from None
        _check_header(path, text)
    else:
        try:
            frame = pd.read_parquet(path)
        except ImportError as err:
            raise ImportError(
                f"reading {path} needs a parquet engine: pip install pyarrow (or save the table as .csv)"
            ) from err
        except Exception as err:  # pyarrow's errors have no common public base
            raise ValueError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]  # " x" and "x" are the same column name
    if len(frame) == 0:
        raise ValueError(f"{path}: has column names {[str(c) for c in frame.columns]} but no data rows")
    if len(set(map(str, frame.columns))) != len(frame.columns):
        raise ValueError(f"{path}: repeated column names {[str(c) for c in frame.columns]}; rename them")
    numeric = frame.select_dtypes(include=[np.number, "bool"]).columns
    other = [str(c) for c in frame.columns if c not in numeric]
    values = frame[numeric].to_numpy(dtype=np.float64)
    return values, [str(c) for c in numeric], other


def _check_header(path: Path, text: str) -> None:
    """ValueError when a header cell is blank: often a saved DataFrame index (`df.to_csv()`)."""
    import csv
    import io

    try:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:
        return  # pandas read it; a quirk of the header is not worth refusing the file for
    blank = [j + 1 for j, name in enumerate(header) if not name.strip()]
    if blank:
        raise ValueError(
            f"{path}: column(s) {blank} have no name in the header row; a first column without a name "
            "is usually a saved DataFrame index (save with df.to_csv(path, index=False)), otherwise name them"
        )


def check_columns(values: np.ndarray, names: Sequence[str], non_numeric: Sequence[str], where: str) -> None:
    """ValueError listing every column that cannot be modelled, each kind with its fix."""
    problems = []
    if non_numeric:
        problems.append(
            f"not numeric: {list(non_numeric)} (drop them, or encode them as numbers, e.g. one-hot "
            "columns, and save the table again)"
        )
    bad = ~np.isfinite(values)
    missing = [f"{names[j]} ({int(bad[:, j].sum())} rows)" for j in range(values.shape[1]) if bad[:, j].any()]
    if missing:
        problems.append(f"NaN or inf: {missing} (drop those rows, e.g. frame.dropna(), or fill them in)")
    finite_cols = [j for j in range(values.shape[1]) if not bad[:, j].any()]
    constant = [names[j] for j in finite_cols if values.shape[0] and np.ptp(values[:, j]) == 0]
    if constant:
        problems.append(f"constant: {constant} (a constant column has no density: drop it)")
    if problems:
        raise ValueError(f"{where}: columns that cannot be modelled; " + "; ".join(problems))
    if values.shape[1] == 0:
        raise ValueError(f"{where}: no numeric columns to model")


def _row_name(path: Path):
    if path.suffix.lower() == ".csv":
        return lambda i: f"data row {i + 1}"
    return lambda i: f"row {i}"


def seeded_split(values: np.ndarray, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80/10/10 train/validation/test after a permutation from RandomState(seed); at least one row
    in each of validation and test."""
    n = values.shape[0]
    order = np.random.RandomState(seed).permutation(n)
    n_val = n_test = max(1, int(round(0.1 * n)))
    shuffled = values[order]
    return shuffled[: n - n_val - n_test], shuffled[n - n_val - n_test : n - n_test], shuffled[n - n_test :]


def load_user_table(path: Union[str, Path], seed: int = 0) -> TabularData:
    """The table at `path` checked, split 80/10/10 (RandomState(seed)) and standardized by the
    training split (mean, standard deviation with ddof 0)."""
    path = Path(path)
    if not is_table_path(path):
        raise ValueError(f"{path}: unsupported table file; use one of {', '.join(TABLE_SUFFIXES)}")
    existing_file(path, "table", f"give the path of a {', '.join(TABLE_SUFFIXES)} file")
    values, names, other = _read(path)
    check_columns(values, names, other, str(path))
    check_values(values, names, str(path), _row_name(path))
    if values.shape[0] < MIN_ROWS:
        raise ValueError(f"{path}: {values.shape[0]} rows; a train/validation/test split needs at least {MIN_ROWS}")
    train, val, test = seeded_split(values, seed)
    mu, sd = train.mean(axis=0), train.std(axis=0)
    flat = [names[j] for j in range(len(names)) if sd[j] == 0]
    if flat:
        raise ValueError(
            f"{path}: columns {flat} are constant on the training split (seed {seed}); drop them or use more rows"
        )
    return TabularData(path.name, (train - mu) / sd, (val - mu) / sd, (test - mu) / sd, tuple(names), mu, sd)
