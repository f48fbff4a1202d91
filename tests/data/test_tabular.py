"""Tabular loaders: tiny files in each standard format, MAF preprocessing checked step by step."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from odeflow.data.tabular import DIMS, data_dir, load_tabular, split_tail


def _pandas():
    return pytest.importorskip("pandas")  # GAS and HEPMASS need the 'tabular' extra


def _power_raw(n: int = 100) -> np.ndarray:
    rng = np.random.RandomState(1)
    return rng.rand(n, 8) + np.arange(8) * 10.0  # column j lives near 10 j


def test_split_tail_sizes_match_the_published_split() -> None:
    sizes = {
        2_049_280: (1_659_917, 184_435, 204_928),
        36_488: (29_556, 3_284, 3_648),
        1_052_065: (852_174, 94_685, 105_206),
    }
    for n, expected in sizes.items():
        train, val, test = split_tail(np.zeros((n, 1)))
        assert (len(train), len(val), len(test)) == expected


def test_power_step_by_step(tmp_path) -> None:
    raw = _power_raw()
    (tmp_path / "power").mkdir()
    np.save(tmp_path / "power/data.npy", raw)
    got = load_tabular("power", tmp_path)
    rng = np.random.RandomState(42)
    x = raw[rng.permutation(100)][:, [0, 2, 4, 5, 6, 7]]  # columns 3 and 1 dropped
    voltage, gap, sm = 0.01 * rng.rand(100, 1), 0.001 * rng.rand(100, 1), rng.rand(100, 3)
    x[:, :1] += gap
    x[:, 1:2] += voltage
    x[:, 2:5] += sm  # time column: no noise
    train, val, test = x[:81], x[81:90], x[90:]
    mu, s = x[:90].mean(0), x[:90].std(0)
    assert got.dim == 6 == DIMS["power"]
    np.testing.assert_allclose(got.train, (train - mu) / s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.val, (val - mu) / s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.test, (test - mu) / s, rtol=1e-9, atol=1e-12)
    both = np.vstack([got.train, got.val])
    np.testing.assert_allclose(both.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(both.std(0), 1, atol=1e-12)
    assert abs(got.test.mean()) > 1e-6  # statistics are not the test split's


def _gas_frame(n: int = 60):
    pd = _pandas()
    rng = np.random.RandomState(3)
    cols = {"Time": np.arange(n, dtype=float), "Meth": rng.rand(n), "Eth": rng.rand(n)}
    base = rng.randn(n, 10)
    for j in range(10):
        cols[f"s{j}"] = base[:, j]
    cols["s1"] = cols["s0"] * 2 + 1e-3 * rng.randn(n)  # s0, s1 correlate > 0.98: s0 (the first) goes
    frame = pd.DataFrame(cols)
    # The MAF file was pickled by an old pandas: object column labels. (pandas >= 3 with pyarrow
    # would otherwise store them as an ArrowStringArray, which the real file never holds.)
    frame.columns = pd.Index(list(frame.columns), dtype=object)
    return frame


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_gas_pickle_step_by_step(tmp_path, protocol) -> None:
    frame = _gas_frame()
    (tmp_path / "gas").mkdir()
    frame.to_pickle(tmp_path / "gas/ethylene_CO.pickle", protocol=protocol)
    got = load_tabular("gas", tmp_path)
    kept = frame[[f"s{j}" for j in range(1, 10)]]
    norm = ((kept - kept.mean()) / kept.std()).to_numpy()  # whole set, ddof 1
    assert got.dim == 9
    assert (len(got.train), len(got.val), len(got.test)) == (49, 5, 6)
    np.testing.assert_allclose(np.vstack([got.train, got.val, got.test]), norm, rtol=1e-9, atol=1e-12)  # no shuffle
    np.testing.assert_allclose(np.vstack([got.train, got.val, got.test]).std(0, ddof=1), 1, atol=1e-12)


def test_gas_csv_is_read_when_the_pickle_is_absent(tmp_path) -> None:
    (tmp_path / "gas").mkdir()
    _gas_frame().to_csv(tmp_path / "gas/ethylene_CO.csv", index=False)
    assert load_tabular("gas", tmp_path).dim == 9


class _Evil:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_gas_pickle_with_code_is_refused(tmp_path, capsys) -> None:
    _pandas()
    (tmp_path / "gas").mkdir()
    (tmp_path / "gas/ethylene_CO.pickle").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match=r"refusing to load global builtins.print.*to_csv"):
        load_tabular("gas", tmp_path)
    assert "must not run" not in capsys.readouterr().out


def _hepmass_files(root) -> tuple:
    pd = _pandas()
    rng = np.random.RandomState(5)
    n_train, n_test = 80, 30
    feats = [f"f{j}" for j in range(5)]

    def table(n: int, extra: bool):
        d = {"# label": (np.arange(n) % 4 != 0).astype(float)}
        for f in feats:
            d[f] = rng.randn(n)
        d["f2"] = np.where(rng.rand(n) < 0.3, -1.0, rng.rand(n))  # smallest value repeated: dropped
        d["mass"] = np.full(n, 1000.0)  # constant: dropped
        if extra:
            d["junk"] = rng.rand(n)
        return pd.DataFrame(d)

    train, test = table(n_train, False), table(n_test, True)
    (root / "hepmass").mkdir()
    train.to_csv(root / "hepmass/1000_train.csv", index=False)
    test.to_csv(root / "hepmass/1000_test.csv", index=False)
    return train, test


def test_hepmass_step_by_step(tmp_path) -> None:
    train, test = _hepmass_files(tmp_path)
    got = load_tabular("hepmass", tmp_path)
    tr = train[train["# label"] == 1].drop(columns=["# label"]).to_numpy()
    te = test[test["# label"] == 1].drop(columns=["# label", "junk"]).to_numpy()
    mu, s = tr.mean(0), tr.std(0, ddof=1)
    s[s == 0] = 1.0  # constant mass column (dropped)
    keep = [0, 1, 3, 4]  # f2 and mass dropped
    tr, te = ((tr - mu) / s)[:, keep], ((te - mu) / s)[:, keep]
    n_val = int(0.1 * len(tr))
    assert got.dim == 4
    np.testing.assert_allclose(got.train, tr[:-n_val], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.val, tr[-n_val:], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.test, te, rtol=1e-9, atol=1e-12)


def test_miniboone_step_by_step(tmp_path) -> None:
    raw = np.random.RandomState(7).randn(50, 43) * 3 + 2
    (tmp_path / "miniboone").mkdir()
    np.save(tmp_path / "miniboone/data.npy", raw)
    got = load_tabular("miniboone", tmp_path)
    mu, s = raw[:45].mean(0), raw[:45].std(0)
    assert got.dim == 43 and (len(got.train), len(got.val), len(got.test)) == (41, 4, 5)
    np.testing.assert_allclose(got.test, (raw[45:] - mu) / s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.val, (raw[41:45] - mu) / s, rtol=1e-9, atol=1e-12)


def test_bsds300_reads_the_three_datasets(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    rng = np.random.RandomState(0)
    parts = {"train": rng.rand(20, 63), "validation": rng.rand(5, 63), "test": rng.rand(6, 63)}
    (tmp_path / "BSDS300").mkdir()
    with h5py.File(tmp_path / "BSDS300/BSDS300.hdf5", "w") as f:
        for k, v in parts.items():
            f[k] = v
    got = load_tabular("bsds300", tmp_path)
    assert got.dim == 63
    np.testing.assert_array_equal(got.val, parts["validation"])
    np.testing.assert_array_equal(got.test, parts["test"])


def test_bsds300_wrong_width_is_an_error(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    (tmp_path / "BSDS300").mkdir()
    with h5py.File(tmp_path / "BSDS300/BSDS300.hdf5", "w") as f:
        for k in ("train", "validation", "test"):
            f[k] = np.zeros((3, 64))
    with pytest.raises(ValueError, match=r"63 columns; got shape \(3, 64\)"):
        load_tabular("bsds300", tmp_path)


@pytest.mark.parametrize(
    "name, rel",
    [
        ("power", "power/data.npy"),
        ("gas", "gas/ethylene_CO.pickle"),
        ("hepmass", "hepmass/1000_train.csv"),
        ("miniboone", "miniboone/data.npy"),
        ("bsds300", "BSDS300/BSDS300.hdf5"),
    ],
)
def test_missing_file_names_the_relative_path(tmp_path, name, rel) -> None:
    with pytest.raises(FileNotFoundError, match=rf"missing file {rel}.*zenodo"):
        load_tabular(name, tmp_path)


def test_data_dir_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ODEFLOW_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("ODEFLOW_DATA")
    assert str(data_dir()) == "data"


def test_bad_files_are_errors(tmp_path) -> None:
    (tmp_path / "power").mkdir()
    np.save(tmp_path / "power/data.npy", np.zeros((10, 7)))
    with pytest.raises(ValueError, match="8 columns; got shape"):
        load_tabular("power", tmp_path)
    raw = _power_raw()
    raw[4, 2] = np.nan
    np.save(tmp_path / "power/data.npy", raw)
    with pytest.raises(ValueError, match="NaN or inf in 1 rows"):
        load_tabular("power", tmp_path)
    with pytest.raises(ValueError, match="valid: power, gas"):
        load_tabular("mnist", tmp_path)


def test_digits_are_dequantized_pixels() -> None:
    load_digits = pytest.importorskip("sklearn.datasets").load_digits
    got = load_tabular("digits")
    assert got.dim == 64 and (len(got.train), len(got.val), len(got.test)) == (1457, 161, 179)
    images = load_digits().data[np.random.RandomState(42).permutation(1797)]
    mean = got.train.mean(0)
    np.testing.assert_allclose(mean, 0, atol=1e-12)
    # undo the centring: x * 17 lies in [v, v + 1) for the original grey level v
    dequantized = np.vstack([got.train, got.val, got.test])
    offset = (
        images[:1457] + np.random.RandomState(0).rand(1797, 64)[np.random.RandomState(42).permutation(1797)][:1457]
    ).mean(0) / 17
    np.testing.assert_array_equal(np.floor((dequantized + offset) * 17 + 1e-9), images)
    np.testing.assert_array_equal(load_tabular("digits").test, got.test)  # fixed


def test_breast_cancer_is_standardized() -> None:
    pytest.importorskip("sklearn")
    got = load_tabular("breast_cancer")
    assert got.dim == 30 and (len(got.train), len(got.val), len(got.test)) == (462, 51, 56)
    both = np.vstack([got.train, got.val])
    np.testing.assert_allclose(both.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(both.std(0), 1, atol=1e-12)
