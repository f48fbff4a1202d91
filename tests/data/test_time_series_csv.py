import pytest
import torch

from odeflow.data import load_series_csv, make_spiral


def write(tmp_path, text, name="series.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_irregular_times(tmp_path):
    p = write(tmp_path, "t,x,y\n0.0,1,2\n0.13,1.5,2.5\n0.9,2,3\n")
    t, u, cols = load_series_csv(p)
    assert torch.allclose(t, torch.tensor([0.0, 0.13, 0.9]))
    assert u.shape == (3, 2) and cols == ["x", "y"]


def test_select_columns(tmp_path):
    p = write(tmp_path, "time,a,b,c\n0,1,2,3\n1,4,5,6\n")
    _, u, cols = load_series_csv(p, time_column="time", value_columns=["c", "a"])
    assert cols == ["c", "a"] and u[1].tolist() == [6.0, 4.0]


@pytest.mark.parametrize(
    "text,match",
    [
        ("x,y\n0,1\n1,2\n", "no time column 't'"),
        ("t,x\n0,1\n1,abc\n", r"line 3, column 'x': 'abc' is not a number"),
        ("t,x\n0,1\n2,2\n1,3\n", "strictly increasing.*line 4"),
        ("t,x\n0,1\n0,2\n", "strictly increasing"),
        ("t,x\n0,1\n1,nan\n", "not finite"),
        ("t,x\n0,1\n1\n", "line 3: 1 fields"),
        ("t,x\n0,1\n", "at least 2 data rows"),
        ("", "empty"),
    ],
)
def test_malformed_csv(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_series_csv(write(tmp_path, text))


def test_missing_value_column(tmp_path):
    with pytest.raises(ValueError, match=r"value column\(s\) \['z'\] not found"):
        load_series_csv(write(tmp_path, "t,x\n0,1\n1,2\n"), value_columns=["z"])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_series_csv(tmp_path / "nope.csv")


def test_spiral_matches_the_seed_setup():
    t, u = make_spiral(dtype=torch.float64)
    assert t.shape == (30,) and u.shape == (30, 2)
    assert t[-1].item() == pytest.approx(1.5)
    assert u[0].tolist() == [2.0, 0.0]
    # du/dt = A^T u^3 at t=0: (-0.1*8, 2*8) -> the curve starts moving up and slightly left
    assert u[1, 1] > 0 and u[1, 0] < 2.0
