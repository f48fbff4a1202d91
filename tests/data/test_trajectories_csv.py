import pytest
import torch

from odeflow.data.trajectories_csv import load_trajectories_csv, write_trajectories_csv


def test_long_form_round_trip_groups_rows_by_trajectory(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("trajectory,time,u,v\nb,0,1,2\na,0,5,6\nb,0.5,1.5,2.5\na,0.25,5.5,6.5\nb,1,2,3\n")
    t, x, traj, names, labels = load_trajectories_csv(p)
    assert names == ["u", "v"] and labels == ["b", "a"]
    assert traj.tolist() == [0, 0, 0, 1, 1]
    assert t.tolist() == [0, 0.5, 1, 0, 0.25] and x[3].tolist() == [5, 6]
    out = write_trajectories_csv(tmp_path / "w.csv", t, x, traj, names)
    t2, x2, traj2, names2, _ = load_trajectories_csv(out)
    assert torch.equal(t2, t) and torch.equal(x2, x) and torch.equal(traj2, traj) and names2 == names


def test_wide_form_without_trajectory_column(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("t,x\n0,1\n1,2\n2,4\n")
    t, x, traj, names, labels = load_trajectories_csv(p)
    assert names == ["x"] and labels == [""] and traj.tolist() == [0, 0, 0] and x[:, 0].tolist() == [1, 2, 4]


@pytest.mark.parametrize(
    "text,match",
    [
        ("trajectory,t,x\na,0,1\na,1,2\nb,0,1\na,0.5,3\n", r"strictly increasing in trajectory 'a', but line 5"),
        ("t,x\n0,1\n1,nan\n", r"line 3, column 'x': 'nan' is not finite"),
        ("t,x\n0,1\n1,\n", "is not a number"),
        ("t,x\n0,1,2\n", "3 fields"),
        ("", "is empty"),
    ],
)
def test_bad_files(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_trajectories_csv(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_trajectories_csv(tmp_path / "none.csv")
