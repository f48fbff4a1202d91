"""Checks every reader of a user's file shares, so that each problem is named with the file and the fix.

- `existing_file`: a missing path ("does not exist") and a folder ("is a folder") are told apart.
- `read_text`: the file as UTF-8 text, or a ValueError naming the file and the first bad byte.
- `check_values`: a value that overflows when standardized (its square overflows float64), or that
  lies more than `EXTREME` inter-percentile ranges (1st to 99th) from the column's median, is
  refused with its row and column name: standardization would squash every other value to ~0
  (or to NaN), and a model trained on that reports plausible numbers for nonsense.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

EXTREME = 1e6  # a value this many 1-99 percentile ranges from the median is refused


def existing_file(path: Union[str, Path], what: str, hint: str) -> Path:
    """``path`` as a Path when it is a file; FileNotFoundError (missing) or ValueError (a folder)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file; {hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; {hint}")
    return path


def refuse_folder(path: Union[str, Path], what: str, hint: str = "") -> None:
    """ValueError when ``path`` is a folder where a file is expected ("does not exist" misleads)."""
    if Path(path).is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file{'; ' + hint if hint else ''}")


def load_npy(path: Path) -> np.ndarray:
    """One array from a .npy file (no pickles); ValueError naming the file when it is not one."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, EOFError, SyntaxError, ... for damaged headers
        raise ValueError(
            f"{path}: not a readable .npy array ({err}); save it with np.save(path, x) (no object arrays)"
        ) from None
    if not isinstance(arr, np.ndarray):
        if hasattr(arr, "close"):
            arr.close()
        raise ValueError(f"{path}: holds an archive (.npz), not one array; save a single array with np.save")
    return arr


def read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark allowed); ValueError naming the file when it is not text."""
    data = Path(path).read_bytes()
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: a NUL byte; this is a binary or damaged file, "
            "not a text CSV (save it again as CSV UTF-8)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8 text; save the file as UTF-8 "
            "(e.g. 'CSV UTF-8' in a spreadsheet, or iconv -f latin1 -t utf-8)"
        ) from None


def check_values(
    values: np.ndarray, names: Sequence[str], where: str, row_name: Callable[[int], str] = lambda i: f"row {i + 1}"
) -> None:
    """ValueError naming the row and column of a value that overflows when standardized or is extreme."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        return
    limit = np.sqrt(np.finfo(np.float64).max / max(values.shape[0], 1))  # the sum of squares stays finite
    for j, name in enumerate(names):
        col = values[:, j]
        if not np.isfinite(col).all():
            continue  # NaN/inf are reported by the reader
        big = np.abs(col)
        i = int(np.argmax(big))
        if big[i] > limit:
            raise ValueError(
                f"{where}, {row_name(i)}, column {name!r}: {col[i]:g} overflows when the column is standardized "
                f"(|value| above {limit:.3g}); fix or drop that row, or rescale the column"
            )
        low, high = np.percentile(col, [1, 99])
        spread = high - low
        if spread > 0:
            dev = np.abs(col - np.median(col)) / spread
            i = int(np.argmax(dev))
            if dev[i] > EXTREME:
                raise ValueError(
                    f"{where}, {row_name(i)}, column {name!r}: {col[i]:g} is {dev[i]:.3g} times the column's "
                    f"1-99 percentile range from its median (a typo or a sentinel value?); fix or drop that row"
                )
