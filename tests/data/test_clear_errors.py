"""Each bad input ends in an error that names the file, the row or column, and the fix."""

import numpy as np
import pandas as pd
import pytest
import torch

from odeflow.data.file_checks import EXTREME, check_values
from odeflow.data.time_series_csv import load_series_csv
from odeflow.data.trajectories_csv import load_trajectories_csv
from odeflow.data.user_table import load_user_table

READERS = {
    "table": lambda p: load_user_table(p),
    "series": lambda p: load_series_csv(p),
    "trajectories": lambda p: load_trajectories_csv(p),
}


def _frame(seed, rows=60):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 10, rows)) + np.arange(rows) * 1e-3
    return pd.DataFrame({"t": t, "speed": np.abs(rng.normal(3, 1, rows)), "heat": rng.normal(0, 50, rows)})


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_folder_is_called_a_folder(tmp_path, reader):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder, not a file"):
        READERS[reader](folder)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_non_utf8_text_names_the_file_and_line(tmp_path, reader):
    path = tmp_path / "latin.csv"
    path.write_bytes("t,speed,heat\n0,1,2\n1,2,3\n2,4,5\n# caf\xe9\n".encode("latin1"))
    with pytest.raises(ValueError, match=r"latin\.csv, line 5: byte 0xe9 is not UTF-8"):
        READERS[reader](path)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("value", [1e300, -1e200, 3e160])
def test_an_overflowing_value_is_refused_with_its_row_and_column(tmp_path, reader, seed, value):
    frame = _frame(seed)
    row = int(np.random.default_rng(seed).integers(5, 55))
    frame.loc[row, "heat"] = value
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    where = f"data row {row + 1}" if reader == "table" else f"line {row + 2}"
    with pytest.raises(ValueError, match=rf"x\.csv, {where}, column 'heat': .* overflows"):
        READERS[reader](path)


@pytest.mark.parametrize("seed", range(6))
def test_an_extreme_value_is_refused_and_ordinary_heavy_tails_are_not(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_cauchy((20_000, 2))  # heavy tails: legitimate
    check_values(x, ["a", "b"], "f.csv")
    low, high = np.percentile(x[:, 1], [1, 99])
    x[123, 1] = np.median(x[:, 1]) + 2 * EXTREME * (high - low)  # a sentinel such as 9.9e9
    with pytest.raises(ValueError, match=r"f\.csv, row 124, column 'b': .* percentile range"):
        check_values(x, ["a", "b"], "f.csv")


def test_a_header_only_table_says_no_data_rows(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("speed,heat\n")
    with pytest.raises(ValueError, match=r"h\.csv: has column names \['speed', 'heat'\] but no data rows"):
        load_user_table(path)


def test_an_empty_or_corrupt_parquet_names_the_file(tmp_path):
    pytest.importorskip("pyarrow")
    for content in (b"", b"PAR1 not really"):
        path = tmp_path / "t.parquet"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"t\.parquet: not a readable parquet file"):
            load_user_table(path)


def test_a_constant_discover_column_is_named(tmp_path):
    from odeflow.discover.neural_fit import check_observations

    t = torch.linspace(0, 1, 20, dtype=torch.float64)
    x = torch.stack([torch.sin(t), torch.ones_like(t)], 1)
    with pytest.raises(ValueError, match=r"\['lamp'\] are constant"):
        check_observations(t, x, names=["prey", "lamp"])


def test_a_too_large_library_is_refused_with_the_flags_that_fix_it():
    from odeflow.discover.pipeline import check_library_size, library_size

    assert library_size(30, 3) == 5456 and library_size(2, 3) == 10
    with pytest.raises(ValueError, match=r"5,456 terms, over --max-terms 1,000.*--degree 2 \(496 terms\)"):
        check_library_size(30, None, 1000)
    assert check_library_size(30, 2, 1000) == 496


def test_a_foreign_file_given_as_checkpoint_gets_no_advice_to_load_unsafely(tmp_path):
    from odeflow.training.checkpoint import load_checkpoint

    path = tmp_path / "notes.pt"
    path.write_text("x\n")
    with pytest.raises(ValueError, match=r"notes\.pt is corrupt or not an odeflow checkpoint") as info:
        load_checkpoint(path)
    assert "weights_only` set to `False`" not in str(info.value) and "\n" not in str(info.value)
