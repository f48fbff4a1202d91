"""The command line's flow-matching defaults (--lr 5e-3, --net-time reversed): applied only with
--objective flow-matching, an option or a config file the user names wins, the recipe file odeflow
picks by itself does not, and summary.json records what a run used."""

import pytest

from odeflow.cli.main import build_parser
from odeflow.cli.train_cnf import make_cnf_config
from odeflow.cli.train_image import make_image_config
from odeflow.cli.train_tabular import make_tabular_config
from odeflow.tasks.objective_config import FM_DEFAULTS

MAKE = {"cnf": make_cnf_config, "tabular": make_tabular_config, "image": make_image_config}


def _config(task, tmp_path, *argv):
    argv = ["train", task, *argv, "--out", str(tmp_path / "run")]
    return MAKE[task](build_parser(argv).parse_args(argv))[0]


@pytest.mark.parametrize("task", ["cnf", "tabular", "image"])
def test_flow_matching_takes_the_defaults_and_likelihood_keeps_its_own(task, tmp_path):
    fm = _config(task, tmp_path, "--objective", "flow-matching")
    assert (fm.lr, fm.net_time) == (FM_DEFAULTS["lr"], FM_DEFAULTS["net_time"]) == (5e-3, "reversed")
    likelihood = _config(task, tmp_path)
    assert likelihood.net_time == "t"
    plain = {"cnf": 1e-2, "tabular": 1e-3, "image": 3e-3}[task]  # the dataclass or the recipe file
    assert likelihood.lr == plain


@pytest.mark.parametrize("task", ["cnf", "tabular", "image"])
def test_an_explicit_option_wins(task, tmp_path):
    cfg = _config(task, tmp_path, "--objective", "flow-matching", "--lr", "5e-4", "--net-time", "t")
    assert (cfg.lr, cfg.net_time) == (5e-4, "t")
    only_lr = _config(task, tmp_path, "--objective", "flow-matching", "--lr", "2e-3")
    assert (only_lr.lr, only_lr.net_time) == (2e-3, "reversed")


@pytest.mark.parametrize("task", ["cnf", "tabular", "image"])
def test_a_named_config_file_wins(task, tmp_path):
    data = {"cnf": "8gaussians", "tabular": "digits", "image": "digits"}[task]
    path = tmp_path / "mine.toml"
    path.write_text(f'data = "{data}"\nobjective = "flow-matching"\nlr = 7e-4\nnet_time = "t"\n')
    cfg = _config(task, tmp_path, "--config", str(path))
    assert (cfg.objective, cfg.lr, cfg.net_time) == ("flow-matching", 7e-4, "t")
    bare = tmp_path / "bare.toml"
    bare.write_text(f'data = "{data}"\nobjective = "flow-matching"\n')
    cfg = _config(task, tmp_path, "--config", str(bare))
    assert (cfg.lr, cfg.net_time) == (5e-3, "reversed")


def test_summary_records_the_lr_and_net_time_used(tmp_path):
    from odeflow.tasks.cnf2d import train_cnf

    small = ("--objective", "flow-matching", "--iterations", "2", "--val-size", "16", "--hidden", "8")
    summary = train_cnf(_config("cnf", tmp_path, *small, "--lr", "2e-3"), None, progress=False)
    assert (summary["lr"], summary["net_time"], summary["ema"]) == (2e-3, "reversed", 0.99)


def test_help_names_both_defaults():
    parser = build_parser(["train", "cnf"])
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    cnf = next(a for a in sub._actions if getattr(a, "choices", None) and "cnf" in a.choices).choices["cnf"]
    helps = {a.dest: a.help for a in cnf._actions}
    assert helps["lr"].endswith("; flow matching: 0.005)") and helps["net_time"].endswith("flow matching: reversed)")


def test_cnf_flow_matching_validates_and_checkpoints_every_500_unless_told(tmp_path):
    fm = _config("cnf", tmp_path, "--objective", "flow-matching")
    assert (fm.val_every, fm.checkpoint_every) == (500, 500)
    told = _config("cnf", tmp_path, "--objective", "flow-matching", "--checkpoint-every", "50", "--val-every", "20")
    assert (told.val_every, told.checkpoint_every) == (20, 50)
    likelihood = _config("cnf", tmp_path)
    assert (likelihood.val_every, likelihood.checkpoint_every) == (50, 100)
