"""PhysioNet 2012 loader on fixture files written here (same layout as set-a/ and Outcomes-a.txt)."""

import pytest
import torch

from odeflow.data import load_physionet
from odeflow.data.physionet import VARIABLES, parse_record

REC_1 = """Time,Parameter,Value
00:00,RecordID,132539
00:00,Age,54
00:00,Gender,0
00:00,Height,-1
00:00,ICUType,4
00:00,Weight,-1
00:07,GCS,15
00:07,HR,73
00:11,HR,77
00:37,NIDiasABP,58
01:37,Temp,35.1
47:59,Urine,900
"""
REC_2 = """Time,Parameter,Value
00:00,RecordID,132540
00:00,Age,76
00:00,Weight,80.6
00:31,HR,88
00:31,Foo,1
"""
OUTCOMES = """RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death
132539,6,1,5,-1,0
132540,16,8,8,-1,1
"""


@pytest.fixture
def physionet_dir(tmp_path):
    d = tmp_path / "physionet"
    (d / "set-a").mkdir(parents=True)
    (d / "set-a" / "132539.txt").write_text(REC_1)
    (d / "set-a" / "132540.txt").write_text(REC_2)
    (d / "Outcomes-a.txt").write_text(OUTCOMES)
    return d


def test_41_variables():
    assert len(VARIABLES) == 41 and len(set(VARIABLES)) == 41


def test_parse_record_step_by_step(physionet_dir):
    col = {v: j for j, v in enumerate(VARIABLES)}
    rid, times, values, mask = parse_record(physionet_dir / "set-a" / "132539.txt", quantization=None)
    assert rid == "132539"
    assert times == [0.0, 7 / 60, 11 / 60, 37 / 60, 97 / 60, 47 + 59 / 60]
    assert values[0, col["Age"]] == 54 and mask[0, col["Age"]] == 1
    assert mask[0, col["Height"]] == 0 and mask[0, col["Weight"]] == 0  # -1: missing descriptor
    assert mask[0, col["Gender"]] == 1 and values[0, col["Gender"]] == 0
    assert values[1, col["HR"]] == 73 and values[2, col["HR"]] == 77 and values[1, col["GCS"]] == 15
    assert int(mask.sum()) == 3 + 2 + 1 + 1 + 1 + 1
    # quantized to 0.5 h: 00:07 and 00:11 fall into the 0 h bin, HR averaged
    _, qt, qv, qm = parse_record(physionet_dir / "set-a" / "132539.txt", quantization=0.5)
    assert qt == [0.0, 0.5, 1.5, 48.0]
    assert qv[0, col["HR"]] == 75 and qm[0, col["GCS"]] == 1 and qv[0, col["Age"]] == 54
    assert qv[1, col["NIDiasABP"]] == 58 and qv[2, col["Temp"]] == 35.1 and qv[3, col["Urine"]] == 900


def test_load_directory_with_labels(physionet_dir):
    series, names = load_physionet(physionet_dir, quantization=0.1, dtype=torch.float64)
    assert names == list(VARIABLES)
    assert [s.name for s in series] == ["132539", "132540"]
    assert [s.label for s in series] == [0.0, 1.0]
    assert series[1].times.tolist() == [0.0, 0.5]  # 00:31 -> 0.5 h; unknown 'Foo' skipped
    assert series[1].values.shape == (2, 41) and int(series[1].mask.sum()) == 3
    # without an outcomes file the labels are unknown
    (physionet_dir / "Outcomes-a.txt").unlink()
    assert [s.label for s in load_physionet(physionet_dir)[0]] == [None, None]


@pytest.mark.parametrize(
    "line,match",
    [
        ("0007,HR,73", "not HH:MM"),
        ("00:70,HR,73", "not HH:MM"),
        ("00:07,HR,high", "not a number"),
        ("00:07,HR", "2 fields"),
    ],
)
def test_malformed_record(tmp_path, line, match):
    p = tmp_path / "1.txt"
    p.write_text("Time,Parameter,Value\n" + line + "\n")
    with pytest.raises(ValueError, match=match):
        parse_record(p)


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="physionet.org"):
        load_physionet(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no record files"):
        load_physionet(tmp_path)
    (tmp_path / "1.txt").write_text("a,b\n")
    with pytest.raises(ValueError, match="Time,Parameter,Value"):
        load_physionet(tmp_path)
