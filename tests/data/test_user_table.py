"""`--data PATH`: a table of the user's own, checked column by column, split 80/10/10 with a
seed and standardized by the training split."""

import numpy as np
import pandas as pd
import pytest

from odeflow.data.tabular import load_tabular
from odeflow.data.user_table import is_table_path, load_user_table


def _frame(n, d, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(3.0, 2.0, (n, d)) @ rng.normal(size=(d, d)), columns=[f"f{j}" for j in range(d)])


@pytest.mark.parametrize("n, d, seed", [(50, 2, 0), (123, 5, 1), (1000, 3, 2)])
def test_csv_split_sizes_standardization_and_seed(tmp_path, n, d, seed):
    path = tmp_path / "t.csv"
    _frame(n, d, seed).to_csv(path, index=False)
    data = load_user_table(path, seed=seed)
    n_held = max(1, round(0.1 * n))
    assert (len(data.train), len(data.val), len(data.test)) == (n - 2 * n_held, n_held, n_held)
    np.testing.assert_allclose(data.train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.train.std(axis=0), 1, atol=1e-12)
    again, other = load_user_table(path, seed=seed), load_user_table(path, seed=seed + 1)
    np.testing.assert_array_equal(again.test, data.test)
    assert not np.array_equal(other.test, data.test)
    # the splits are the permuted rows, standardized by the training split's mean and std
    raw = pd.read_csv(path).to_numpy()
    perm = np.random.RandomState(seed).permutation(n)
    train_raw = raw[perm[: len(data.train)]]
    mu, sd = train_raw.mean(axis=0), train_raw.std(axis=0)
    np.testing.assert_allclose(data.train * sd + mu, train_raw, rtol=1e-10)
    np.testing.assert_allclose(data.test * sd + mu, raw[perm[n - n_held :]], rtol=1e-10)


def test_bad_columns_are_named_with_their_fix(tmp_path):
    frame = _frame(40, 3, 0)
    frame["city"] = ["a", "b"] * 20
    frame["one"] = 1.0
    frame.loc[[3, 7], "f1"] = np.nan
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError) as err:
        load_user_table(path)
    text = str(err.value)
    assert "not numeric: ['city']" in text and "one-hot" in text
    assert "NaN or inf: ['f1 (2 rows)']" in text and "dropna" in text
    assert "constant: ['one']" in text and "drop it" in text


def test_npy_and_parquet_tables(tmp_path):
    x = _frame(60, 4, 3).to_numpy()
    np.save(tmp_path / "t.npy", x)
    assert load_user_table(tmp_path / "t.npy").dim == 4
    np.save(tmp_path / "flat.npy", x[:, 0])
    with pytest.raises(ValueError, match="2-D array"):
        load_user_table(tmp_path / "flat.npy")
    pytest.importorskip("pyarrow")
    _frame(60, 4, 3).to_parquet(tmp_path / "t.parquet")
    np.testing.assert_allclose(load_user_table(tmp_path / "t.parquet").train, load_user_table(tmp_path / "t.npy").train)


def test_load_tabular_takes_a_path_and_rejects_other_names(tmp_path):
    path = tmp_path / "t.csv"
    _frame(30, 2, 0).to_csv(path, index=False)
    assert is_table_path(str(path)) and not is_table_path("digits")
    assert load_tabular(str(path), seed=0).dim == 2
    with pytest.raises(ValueError, match="or a path to a table"):
        load_tabular("digitz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tabular(str(tmp_path / "missing.csv"))
