"""Long-format CSV loader, step by step, and its errors."""

import pytest
import torch

from odeflow.data import load_long_csv


def _write(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_series_variables_and_masks(tmp_path):
    p = _write(
        tmp_path, "series,time,variable,value\nb,0.5,y,2.0\na,0.0,x,1.0\nb,0.1,x,-1\na,0.3,y,4.5\n\na,0.3,x,3.0\n"
    )
    series, variables = load_long_csv(p, dtype=torch.float64)
    assert variables == ["x", "y"]
    assert [s.name for s in series] == ["b", "a"]
    b, a = series
    assert b.times.tolist() == [0.1, 0.5]
    assert b.values.tolist() == [[-1.0, 0.0], [0.0, 2.0]] and b.mask.tolist() == [[1, 0], [0, 1]]
    assert a.times.tolist() == [0.0, 0.3]
    assert a.values.tolist() == [[1.0, 0.0], [3.0, 4.5]] and a.mask.tolist() == [[1, 0], [1, 1]]


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "empty"),
        ("id,t,var,val\n", "expected exactly"),
        ("series,time,variable,value\n", "no data rows"),
        ("series,time,variable,value\na,0,x\n", "line 2: 3 fields"),
        ("series,time,variable,value\na,0,x,1\na,zero,x,1\n", "line 3, column 'time': 'zero'"),
        ("series,time,variable,value\na,0,x,nan\n", "not finite"),
        ("series,time,variable,value\na,0,x,1\na,0,x,2\n", "already \\(line 2\\)"),
        ("series,time,variable,value\n,0,x,1\n", "empty series or variable"),
    ],
)
def test_malformed_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_long_csv(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="series,time,variable,value"):
        load_long_csv(tmp_path / "nope.csv")


def test_label_column_gives_class_indices(tmp_path):
    from odeflow.data.long_csv import load_labelled_long_csv

    p = _write(
        tmp_path,
        "series,time,variable,value,label\na,0.0,x,1.0,walk\nb,0.1,x,-1,run\na,0.3,y,4.5,walk\nc,0.2,y,2.0,walk\n",
    )
    series, variables, classes = load_labelled_long_csv(p)
    assert classes == ["run", "walk"] and variables == ["x", "y"]
    assert [(s.name, s.label) for s in series] == [("a", 1.0), ("b", 0.0), ("c", 1.0)]
    plain, _ = load_long_csv(p)  # the label column is ignored there
    assert [s.label for s in plain] == [None, None, None]
    assert torch.equal(plain[0].values, series[0].values)


@pytest.mark.parametrize(
    "text,match",
    [
        ("series,time,variable,value\na,0,x,1\nb,0,x,2\n", "no 'label' column"),
        ("series,time,variable,value,label\na,0,x,1,u\na,1,x,2,v\nb,0,x,1,v\n", "one label"),
        ("series,time,variable,value,label\na,0,x,1,u\nb,1,x,2,u\n", "distinct class"),
        ("series,time,variable,value,label\na,0,x,1,\nb,1,x,2,u\n", "empty 'label'"),
        ("series,time,variable,value,label\na,0,x,1\n", "4 fields, expected 5"),
        ("series,time,variable,value,class\na,0,x,1,u\n", "optionally followed by 'label'"),
    ],
)
def test_label_errors(tmp_path, text, match):
    from odeflow.data.long_csv import load_labelled_long_csv

    with pytest.raises(ValueError, match=match):
        load_labelled_long_csv(_write(tmp_path, text))
