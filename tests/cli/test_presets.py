"""The shipped presets are package data: `--config NAME` or `configs/NAME.toml` from any folder,
`odeflow presets` lists them, and the wheel carries them."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from odeflow.cli.config_options import read_config_file
from odeflow.cli.main import main
from odeflow.preset_files import preset_names, presets_folder, resolve_config
from odeflow.tasks.tabular import default_config_file

REPO = Path(__file__).resolve().parents[2]


def test_the_repository_configs_folder_is_the_presets():
    assert sorted(p.stem for p in (REPO / "configs").glob("*.toml")) == preset_names()
    assert (REPO / "configs").resolve() == presets_folder().resolve()
    assert {"cnf_fast", "digits", "bsds300", "mnist_rnode"} <= set(preset_names())


@pytest.mark.parametrize("name", ["cnf_fast", "digits_fast", "bsds300", "image_digits"])
def test_a_preset_by_name_or_repository_path_from_another_folder(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    expected = read_config_file(presets_folder() / f"{name}.toml")
    for given in (name, f"{name}.toml", f"configs/{name}.toml"):
        assert resolve_config(given) == presets_folder() / f"{name}.toml"
        assert read_config_file(Path(given)) == expected
    assert default_config_file(name) == presets_folder() / f"{name}.toml"


def test_a_file_in_the_working_folder_wins_and_unknown_names_list_the_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "cnf_fast.toml").write_text("iterations = 7\n")
    assert read_config_file(Path("configs/cnf_fast.toml")) == {"iterations": 7}
    with pytest.raises(FileNotFoundError, match="not a preset.*cnf_fast"):
        resolve_config("no_such_recipe")
    with pytest.raises(FileNotFoundError):
        resolve_config("elsewhere/cnf_fast.toml")  # a path that is not configs/NAME is a path only


def test_odeflow_presets_lists_each_preset_on_one_line(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in preset_names():
        (line,) = [x for x in lines if x.split()[0] == name]
        assert len(line) > len(name) + 10  # a description follows the name


@pytest.mark.slow  # builds a wheel (~15 s)
def test_the_wheel_carries_the_presets_and_works_outside_the_clone(tmp_path):
    src = tmp_path / "src_copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."]
    result = subprocess.run(build, cwd=src, capture_output=True, text=True)
    if result.returncode != 0 and "No module named" in result.stderr:
        pytest.skip(f"cannot build a wheel offline here: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("odeflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("odeflow/presets/")) == [
        f"odeflow/presets/{p}.toml" for p in preset_names()
    ]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import odeflow, pathlib; from odeflow.cli.config_options import read_config_file; "
        "from odeflow.tasks.tabular import default_config_file; "
        "print(odeflow.__file__); print(read_config_file(pathlib.Path('configs/cnf_fast.toml'))['iterations']); "
        "print(default_config_file('bsds300'))"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    where, iterations, bsds = out.stdout.split("\n")[:3]
    assert where.startswith(str(site)) and bsds.startswith(str(site))
    assert int(iterations) == read_config_file(presets_folder() / "cnf_fast.toml")["iterations"]
    listing = subprocess.run(
        [sys.executable, "-m", "odeflow.cli.main", "presets"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0 and all(p in listing.stdout for p in preset_names())


def test_each_preset_fits_the_task_it_is_listed_for():
    import dataclasses

    from odeflow.preset_files import describe_presets
    from odeflow.tasks.cnf2d_config import CNFConfig
    from odeflow.tasks.image_config import ImageConfig
    from odeflow.tasks.tabular import flatten_config

    for name, (task, line) in describe_presets().items():
        values = read_config_file(presets_folder() / f"{name}.toml")
        if task == "tabular":
            flatten_config(values, None, name)  # raises on a key TabularConfig does not have
        else:
            cls = ImageConfig if task == "image" else CNFConfig
            assert set(values) <= {f.name for f in dataclasses.fields(cls)}, (name, task)
        assert line and "\n" not in line
