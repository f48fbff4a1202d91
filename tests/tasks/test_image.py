import csv
import json

import pytest

from odeflow.cli.main import main
from odeflow.tasks.image import ImageConfig, ImageTask, load_image_flow
from odeflow.training import Trainer

TINY = [
    "--data",
    "digits",
    "--hidden",
    "4",
    "4",
    "4",
    "--batch",
    "8",
    "--val-size",
    "16",
    "--samples",
    "4",
    "--val-method",
    "rk4",
    "--val-step-size",
    "0.5",
    "--step-size",
    "0.5",
    "--quiet",
]


def test_train_image_cli_writes_bits_per_dim_samples_and_resumable_checkpoints(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "image",
                *TINY,
                "--iterations",
                "3",
                "--val-every",
                "2",
                "--kinetic",
                "0.01",
                "--jacobian",
                "0.01",
                "--pieces",
                "2",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    for split in ("train", "val", "test"):
        assert 0 < summary[f"{split}_bits_per_dim"] < 30
    assert summary["test_images"] == 359
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 3 and all(float(r["bits_per_dim"]) > 0 for r in rows)
    assert [r["val_bits_per_dim"] != "" for r in rows] == [False, True, True]
    assert (run / "samples_000002.png").is_file() and (run / "samples.png").is_file()
    out = tmp_path / "grid.png"
    assert (
        main(["sample", str(run / "best.pt"), "--n", "4", "--out", str(out), "--method", "rk4", "--step-size", "0.5"])
        == 0
    )
    assert out.is_file()
    assert main(["sample", str(run / "best.pt"), "--n", "4", "--out", str(tmp_path / "s.csv")]) == 2
    assert "PNG" in capsys.readouterr().err


def test_learned_end_times_move_and_are_logged(tmp_path):
    cfg = ImageConfig(
        data="digits",
        hidden=[4, 4, 4],
        batch=8,
        iterations=2,
        val_every=2,
        val_size=8,
        samples=4,
        step_size=None,
        n_steps=2,
        learn_T=True,
        T_lr=0.05,
        kinetic=0.01,
        jacobian=0.01,
        val_method="rk4",
        val_step_size=0.5,
    )
    summary = Trainer(ImageTask(cfg), tmp_path / "r", quiet=True).fit()
    assert all(0.1 <= t <= 1.9 for t in summary["T"]) and summary["T"] != [1.0] * 3
    flow, loaded = load_image_flow(tmp_path / "r" / "last.pt")
    assert [float(t.detach()) for t in flow.end_times()] == pytest.approx(summary["T"])


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(data="svhn"), "valid: digits"),
        (dict(mode="adjoint"), "valid: disc-opt"),
        (dict(learn_T=True), "n_steps"),
        (dict(pieces=0), "pieces"),
    ],
)
def test_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        ImageConfig(**bad).validate()


def test_missing_mnist_files_are_reported_by_the_cli(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "image",
                "--data",
                "mnist",
                "--data-dir",
                str(tmp_path),
                "--iterations",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name,epochs,train_images,extra",
    [
        ("mnist_rnode", 100, 54_000, dict(pieces=10, kinetic=0.01, jacobian=0.01, method="rk4", step_size=0.25)),
        ("cifar10_rnode", 100, 45_000, dict(pieces=14, kinetic=0.01, jacobian=0.03, method="rk4", step_size=0.25)),
        (
            "mnist_toflow",
            200,
            54_000,
            dict(learn_T=True, mode="opt-disc", method="dopri5", step_size=None, T_lr=1e-2, T_alpha=0.1, T_eps=0.1),
        ),
    ],
)
def test_config_files_hold_the_papers_settings(name, epochs, train_images, extra):
    from pathlib import Path

    from odeflow.cli.config_options import read_config_file
    from odeflow.cli.train_image import _adjust

    cfg = ImageConfig(**_adjust(read_config_file(Path(__file__).parents[2] / "configs" / f"{name}.toml")))
    cfg.validate()
    assert (cfg.batch, cfg.lr, cfg.optimizer, cfg.hidden, cfg.activation) == (
        200,
        1e-3,
        "adam",
        [64, 64, 64],
        "softplus",
    )
    assert cfg.iterations == epochs * train_images // cfg.batch
    assert {k: getattr(cfg, k) for k in extra} == extra


def test_evaluate_an_image_run_with_its_own_and_a_finer_solver(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "image", *TINY, "--iterations", "2", "--val-every", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run / "last.pt"), "--n", "8", "--json"]) == 0
    coarse = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "evaluate",
                str(run / "last.pt"),
                "--n",
                "8",
                "--json",
                "--method",
                "dopri5",
                "--rtol",
                "1e-6",
                "--atol",
                "1e-6",
            ]
        )
        == 0
    )
    fine = json.loads(capsys.readouterr().out)
    assert coarse["n"] == 8 and coarse["method"] == "rk4" and 0 < coarse["test_bits_per_dim"] < 30
    assert fine["inverse_error"] < 1e-4 and fine["nfe"] > 0
    assert abs(fine["test_bits_per_dim"] - coarse["test_bits_per_dim"]) < 1.0


def test_image_run_reports_its_memory_plan_and_checkpointing_matches_plain(tmp_path):
    runs = {}
    for plan in ("plain", "checkpointed", "adjoint"):
        assert (
            main(
                [
                    "train",
                    "image",
                    *TINY,
                    "--iterations",
                    "2",
                    "--val-every",
                    "2",
                    "--memory-plan",
                    plan,
                    "--eval-batch",
                    "100",
                    "--out",
                    str(tmp_path / plan),
                ]
            )
            == 0
        )
        runs[plan] = json.loads((tmp_path / plan / "summary.json").read_text())
        assert runs[plan]["memory"]["strategy"] == plan and runs[plan]["peak_memory_mb"] > 0
        assert 1 <= runs[plan]["memory"]["eval_chunk"] <= 100  # planned, at most --eval-batch
    assert abs(runs["checkpointed"]["test_bits_per_dim"] - runs["plain"]["test_bits_per_dim"]) < 1e-5
    # the adjoint's gradient differs slightly from the discrete one: after 2 steps, nearly the same model
    assert abs(runs["adjoint"]["test_bits_per_dim"] - runs["plain"]["test_bits_per_dim"]) < 0.05


def test_digits_without_config_uses_the_fast_default_recipe(tmp_path):
    """`odeflow train image --data digits` reads configs/image_digits.toml; options given still win,
    and --config replaces it (MNIST and the others have no default file)."""
    from pathlib import Path

    import tomllib

    from odeflow.cli.main import build_parser
    from odeflow.cli.train_image import make_image_config

    recipe = tomllib.loads((Path(__file__).parents[2] / "configs" / "image_digits.toml").read_text())

    def config(*argv):
        argv = ["train", "image", *argv, "--out", str(tmp_path / "r")]
        return make_image_config(build_parser(argv).parse_args(argv))[0]

    cfg = config("--data", "digits")
    assert {k: getattr(cfg, k) for k in recipe} == recipe and cfg.hidden == [32, 32]
    assert config("--data", "digits", "--batch", "16").batch == 16
    other = tmp_path / "other.toml"
    other.write_text('data = "digits"\niterations = 3\n')
    from_file = config("--config", str(other))
    assert from_file.iterations == 3 and from_file.hidden == ImageConfig().hidden
    assert config("--data", "mnist").hidden == ImageConfig().hidden
