"""A folder given where a file belongs is named as a folder by every reader ("does not exist",
"Is a directory" or a codec error misled: seen by a user passing a run folder as a checkpoint)."""

from pathlib import Path

import pytest

from odeflow.cli.config_options import read_config_file
from odeflow.data.images import load_images, read_cifar_batch, read_idx
from odeflow.data.long_csv import load_long_csv
from odeflow.data.physionet import read_outcomes
from odeflow.data.safe_pickle import load_dataframe_pickle
from odeflow.data.tabular import load_tabular
from odeflow.data.time_series_csv import load_series_csv
from odeflow.data.trajectories_csv import load_trajectories_csv
from odeflow.data.user_table import load_user_table
from odeflow.training.checkpoint import load_checkpoint

READERS = {
    "long csv": (load_long_csv, "x.csv"),
    "series csv": (load_series_csv, "x.csv"),
    "trajectories csv": (load_trajectories_csv, "x.csv"),
    "table csv": (load_user_table, "x.csv"),
    "table npy": (load_user_table, "x.npy"),
    "table parquet": (load_user_table, "x.parquet"),
    "idx": (lambda p: read_idx(p, 2051), "train-images-idx3-ubyte"),
    "cifar batch": (read_cifar_batch, "data_batch_1"),
    "physionet outcomes": (read_outcomes, "Outcomes-a.txt"),
    "gas pickle": (load_dataframe_pickle, "ethylene_CO.pickle"),
    "checkpoint": (load_checkpoint, "last.pt"),
    "config": (read_config_file, "run.toml"),
    "power": (lambda p: load_tabular("power", p.parents[1]), "power/data.npy"),
    "miniboone": (lambda p: load_tabular("miniboone", p.parents[1]), "miniboone/data.npy"),
    "hepmass": (lambda p: load_tabular("hepmass", p.parents[1]), "hepmass/1000_train.csv"),
    "bsds300": (lambda p: load_tabular("bsds300", p.parents[1]), "BSDS300/BSDS300.hdf5"),
    "mnist": (lambda p: load_images("mnist", p.parent, "train"), "train-images-idx3-ubyte"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_folder_where_a_file_belongs_is_named_as_a_folder(tmp_path, reader):
    read, name = READERS[reader]
    folder = tmp_path / "data" / name
    folder.mkdir(parents=True)
    with pytest.raises(ValueError, match="is a folder, not a file") as err:
        read(folder)
    assert str(Path(folder)) in str(err.value)


def test_a_run_folder_given_as_a_checkpoint_points_at_its_files(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="RUN/best.pt or RUN/last.pt"):
        load_checkpoint(tmp_path)
