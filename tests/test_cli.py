"""The keras-atac command line, run in-process with the test's backend on generated data."""

import json
import os
import pathlib
import subprocess
import sys
import tomllib

import keras
import numpy as np
import pytest

import keras_atac
from keras_atac import cli, training
from tests.data_utils import write_image_folder, write_npz

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    write_npz(path, num_train=40, num_test=10, shape=(28, 28))
    return path


def run_cli(capsys, *argv):
    """Runs main(argv); returns (exit code, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_explains_every_option(capsys):
    for command, options in [
        ([], ["train", "compare", "KERAS_BACKEND", "cifar_resnet<depth>", "atac", "arelu"]),
        (
            ["train"],
            [
                "--model",
                "--mechanism",
                "--activation",
                "--dataset",
                "--labels",
                "--data-dir",
                "--subset",
                "--recipe",
                "--epochs",
                "--batch-size",
                "--learning-rate",
                "--weight-decay",
                "--num-classes",
                "--seed",
                "--out",
                "--verbose",
                "summary.json",
            ],
        ),
        (["compare"], ["--activations", "results.md", "TFDS_DATA_DIR"]),
    ]:
        code, out, _ = run_cli(capsys, *command, "--help")
        assert code == 0
        for option in options:
            assert option in out, (command, option)


def test_train_on_an_image_folder(tmp_path, capsys):
    write_image_folder(tmp_path / "data", num_classes=10, train_per_class=2, test_per_class=1)
    argv = [
        "train",
        "--model", "cifar_resnet8",
        "--activation", "relu",
        "--dataset", "cifar10",
        "--data-dir", str(tmp_path / "data"),
        "--epochs", "2",
        "--batch-size", "8",
        "--seed", "3",
        "--verbose", "0",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["command"].startswith("keras-atac train --model cifar_resnet8")
    assert summary["backend"] == keras.backend.backend()
    assert summary["train_images"] == 20 and summary["test_images"] == 10
    assert summary["recipe"]["name"] == "atac_cifar" and summary["recipe"]["epochs"] == 2
    assert summary["recipe"]["drop_epochs"] == [1, 1]
    # cifar_resnet8 with ReLU and a 10-way head: stem 432, stages 4,672 + 14,432 + 57,536,
    # final BN 128, head 650.
    assert summary["trainable_parameters"] == 77_850
    # MACs per 32x32 image: stem 27*16*1024; stage 1 2*144*16*1024; stage 2 (16x16)
    # (144*32 + 288*32 + 16*32)*256; stage 3 (8x8) (288*64 + 576*64 + 32*64)*64; head 64*10.
    assert summary["macs"] == 442_368 + 4_718_592 + 3_670_016 + 3_670_016 + 640
    assert summary["num_classes"] == 10
    assert summary["epochs"] == 2 and 0 <= summary["final_accuracy"] <= 1
    assert summary["seconds_per_epoch"] > 0 and summary["seed"] == 3
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and "val_accuracy" in log[0] and "learning_rate" in log[0]
    assert (tmp_path / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert "best_accuracy" in out


def test_compare_activations_on_an_npz_file(tmp_path, capsys, mnist_npz):
    argv = [
        "compare",
        "--model", "conv_mnist",
        "--activations", "relu,arelu",
        "--dataset", "mnist",
        "--data-dir", str(mnist_npz),
        "--subset", "30",
        "--epochs", "1",
        "--batch-size", "10",
        "--verbose", "0",
        "--out", str(tmp_path / "cmp"),
    ]  # fmt: skip
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    table = (tmp_path / "cmp" / "results.md").read_text()
    assert "keras-atac compare --model conv_mnist" in table
    assert "recipe arelu_mnist: 1 epochs, batch 10, learning rate 0.0001" in table
    rows = [line for line in table.splitlines() if line.startswith("| relu") or "arelu" in line]
    assert len([r for r in rows if r.startswith("|")]) == 2
    summaries = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [s["activation"] for s in summaries] == ["relu", "arelu"]
    # 12,930 weights plus AReLU's two scalars at each of the three sites.
    assert [s["trainable_parameters"] for s in summaries] == [12_930, 12_936]
    assert all(s["train_images"] == 30 for s in summaries)
    for name in ("relu", "arelu"):
        assert (tmp_path / "cmp" / name / "log.csv").exists()
    assert (tmp_path / "cmp" / "curves.png").exists()
    assert "| arelu |" in out


@pytest.mark.parametrize(
    "mechanism, trainable, log_column",
    # GAttANet on cifar_resnet8: 2 * 16 * (16 + 32 + 64) projections and 3 alphas.
    [
        ("ssia", 77_850, "guidance_loss"),
        ("gattanet", 77_850 + 3_587, "val_accuracy"),
        ("gattanet_cosine", 77_850 + 3_587, "val_accuracy"),
    ],
)
def test_train_with_a_mechanism(tmp_path, capsys, mechanism, trainable, log_column):
    write_image_folder(tmp_path / "data", num_classes=10, train_per_class=1, test_per_class=1)
    argv = [
        "train",
        "--model", "cifar_resnet8",
        "--mechanism", mechanism,
        "--dataset", "cifar10",
        "--data-dir", str(tmp_path / "data"),
        "--epochs", "1",
        "--batch-size", "10",
        "--verbose", "0",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["mechanism"] == mechanism
    assert summary["trainable_parameters"] == trainable
    assert log_column in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "vgg16", "--dataset", "mnist"], "unknown model 'vgg16'"),
        (["--model", "conv_mnist", "--dataset", "mnist", "--mechanism", "ssia"], "pairs"),
        (["--model", "conv_mnist", "--dataset", "mnist", "--mechanism", "se"], "'se'"),
        (["--model", "cifar_resnet9", "--dataset", "cifar10"], "depth=9"),
        (["--model", "conv_mnist", "--dataset", "mnist", "--activation", "relux"], "'relux'"),
        (["--model", "conv_mnist", "--dataset", "svhn"], "invalid choice: 'svhn'"),
        (["--model", "conv_mnist", "--dataset", "mnist", "--epochs", "0"], "epochs=0"),
        (
            ["--model", "conv_mnist", "--dataset", "mnist", "--data-dir", "/no/such/dir"],
            "does not exist",
        ),
    ],
)
def test_clear_errors(capsys, argv, message):
    code, _, err = run_cli(capsys, "train", *argv)
    assert code == 2
    assert message in err


def test_malformed_data_folder_and_too_large_subset(tmp_path, capsys, mnist_npz):
    (tmp_path / "train" / "zero").mkdir(parents=True)
    code, _, err = run_cli(
        capsys, "train", "--model", "conv_mnist", "--dataset", "mnist", "--data-dir", str(tmp_path)
    )
    assert code == 2 and "test does not exist" in err
    code, _, err = run_cli(
        capsys, "compare", "--model", "conv_mnist", "--dataset", "mnist", "--activations",
        "relu,relu", "--data-dir", str(mnist_npz),
    )  # fmt: skip
    assert code == 2 and "listed twice" in err
    code, _, err = run_cli(
        capsys, "train", "--model", "conv_mnist", "--dataset", "mnist", "--data-dir",
        str(mnist_npz), "--subset", "1000",
    )  # fmt: skip
    assert code == 2 and "subset=1000" in err


def test_console_script_and_module_entry_points():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["keras-atac"] == "keras_atac.cli:main"
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "keras_atac.cli", "train", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: keras-atac train")


def test_help_prints_percent_signs_once_and_the_threads_option(capsys):
    # The epilog is not %-formatted by argparse: "%%" would print literally.
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    assert "75% and 87.5% of the epochs" in out.replace("\n", " ")
    assert "%%" not in out
    assert "--threads N" in out


def test_compare_attention_modules(tmp_path, capsys):
    write_image_folder(tmp_path / "data", num_classes=10, train_per_class=1, test_per_class=1)
    argv = [
        "compare",
        "--model", "cifar_resnet8",
        "--activations", "relu",
        "--attentions", "none,se",
        "--dataset", "cifar10",
        "--data-dir", str(tmp_path / "data"),
        "--epochs", "1",
        "--batch-size", "10",
        "--verbose", "0",
        "--out", str(tmp_path / "cmp"),
    ]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    summaries = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [s["attention"] for s in summaries] == ["none", "se"]
    # cifar_resnet8: 77,850; SE (r = 16) in its 3 blocks: 49 + 162 + 580.
    assert [s["trainable_parameters"] for s in summaries] == [77_850, 77_850 + 791]
    assert (tmp_path / "cmp" / "relu+se" / "log.csv").exists()
    table = (tmp_path / "cmp" / "results.md").read_text()
    assert "| activation | attention |" in table and "| relu | se |" in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--attention", "relu"], "attention='relu'"),
        (["compare", "--activations", "relu", "--attentions", "se,atac"], "attention='atac'"),
        (["compare", "--activations", "relu", "--attentions", "se,se"], "once"),
        (
            ["compare", "--activations", "relu", "--attention", "se", "--attentions", "se"],
            "not both",
        ),
    ],
)
def test_bad_attention_options(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv, "--model", "cifar_resnet8", "--dataset", "cifar10")
    assert code == 2 and message in err
    code, _, err = run_cli(
        capsys, "train", "--model", "conv_mnist", "--dataset", "mnist", "--attention", "se"
    )
    assert code == 2 and "--attention needs a residual network" in err


class Interrupted(Exception):
    """Stands for a run killed in the middle (a session that ends, Ctrl-C)."""


def test_resume_continues_an_interrupted_compare(tmp_path, capsys, mnist_npz, monkeypatch):
    argv = [
        "compare",
        "--model", "conv_mnist",
        "--activations", "relu,arelu",
        "--dataset", "mnist",
        "--data-dir", str(mnist_npz),
        "--recipe", "atac_cifar",
        "--epochs", "4",
        "--batch-size", "10",
        "--verbose", "0",
        "--out", str(tmp_path / "cmp"),
    ]  # fmt: skip
    # The first network is stopped at the end of its 3rd epoch, before that epoch's CSV row
    # and backup: epochs 0-1 are logged and backed up, the second network has not started.
    original_epoch_end = training.EpochTimer.on_epoch_end

    def stop_in_epoch_2(self, epoch, logs=None):
        if epoch == 2:
            raise Interrupted
        original_epoch_end(self, epoch, logs)

    monkeypatch.setattr(training.EpochTimer, "on_epoch_end", stop_in_epoch_2)
    with pytest.raises(Interrupted):
        cli.main(argv)
    relu = tmp_path / "cmp" / "relu"
    assert (relu / "backup").is_dir() and not (relu / "summary.json").exists()
    assert len(cli.read_log(relu / "log.csv")["loss"]) == 2
    monkeypatch.setattr(training.EpochTimer, "on_epoch_end", original_epoch_end)

    code, out, err = run_cli(capsys, *argv, "--resume")
    assert code == 0, err
    assert "resuming after epoch 2 of 4" in out
    summaries = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [s["resumed_after_epoch"] for s in summaries] == [2, None]
    for summary, name in zip(summaries, ("relu", "arelu")):
        assert summary["epochs"] == 4
        logs = cli.read_log(tmp_path / "cmp" / name / "log.csv")
        # The restored optimizer carries its step count: the ATAC recipe's two x0.1 drops
        # (after floor(75%) and floor(87.5%) of the 4 epochs: both after epoch 3) come at
        # the same epoch as in one whole run.
        np.testing.assert_allclose(logs["learning_rate"], [0.2, 0.2, 0.2, 0.002], rtol=1e-6)
        assert summary["total_seconds"] == pytest.approx(sum(logs["epoch_seconds"]))
        assert not (tmp_path / "cmp" / name / "backup").exists()
    # One row per epoch, also for the epoch the interruption cut.
    epochs = [line.split(",")[0] for line in (relu / "log.csv").read_text().splitlines()[1:]]
    assert epochs == [str(epoch) for epoch in range(4)]

    # Finished runs are read back, not trained again.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    code, out, err = run_cli(capsys, *argv, "--resume")
    assert code == 0, err
    assert out.count("finished earlier") == 2
    assert json.loads((tmp_path / "cmp" / "summary.json").read_text()) == summaries


def test_without_resume_a_backup_is_discarded(tmp_path, capsys, mnist_npz, monkeypatch):
    argv = [
        "train",
        "--model", "conv_mnist",
        "--dataset", "mnist",
        "--data-dir", str(mnist_npz),
        "--epochs", "2",
        "--batch-size", "10",
        "--verbose", "0",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    original_epoch_end = training.EpochTimer.on_epoch_end

    def stop_in_epoch_1(self, epoch, logs=None):
        if epoch == 1:
            raise Interrupted
        original_epoch_end(self, epoch, logs)

    monkeypatch.setattr(training.EpochTimer, "on_epoch_end", stop_in_epoch_1)
    with pytest.raises(Interrupted):
        cli.main(argv)
    monkeypatch.setattr(training.EpochTimer, "on_epoch_end", original_epoch_end)
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "resuming" not in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_after_epoch"] is None and summary["epochs"] == 2
    assert len(cli.read_log(tmp_path / "run" / "log.csv")["loss"]) == 2


def test_read_log_rejects_missing_epochs(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1.0\n2,0.5\n")
    with pytest.raises(ValueError, match=r"consecutive epochs from 0: \[0, 2\]"):
        cli.read_log(path)
    # A repeated epoch (trained again after an interruption) keeps its last row.
    path.write_text("epoch,loss\n0,1.0\n1,0.7\n1,0.6\n")
    assert cli.read_log(path) == {"loss": [1.0, 0.6]}


def write_run(folder, summary, epochs=2):
    """A finished run as `train` writes it: summary.json and a CSVLogger file."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    lines = ["epoch,accuracy,loss,val_accuracy"]
    lines += [f"{epoch},0.5,1.0,{summary['final_accuracy']}" for epoch in range(epochs)]
    (folder / "log.csv").write_text("\n".join(lines) + "\n")


def test_report_pools_the_seeds_of_compare_runs(tmp_path, capsys):
    common = {
        "model": "cifar_resnet8",
        "dataset": "cifar10",
        "labels": "fine",
        "train_images": 100,
        "test_images": 10,
        "epochs": 2,
        "recipe": {"name": "atac_cifar", "epochs": 2},
        "mechanism": "none",
        "backend": keras.backend.backend(),
        "seconds_per_epoch": 1.0,
    }
    for seed, (relu, atac) in enumerate([(0.5, 0.6), (0.7, 0.6)]):
        common["command"] = f"keras-atac compare --seed {seed}"
        runs = tmp_path / f"seed{seed}"
        # A compare's own list of summaries is skipped: its runs have their own files.
        runs.mkdir()
        (runs / "summary.json").write_text("[]")
        write_run(
            runs / "relu",
            {**common, "activation": "relu", "seed": seed, "best_accuracy": relu,
             "final_accuracy": relu, "trainable_parameters": 77_850},
        )  # fmt: skip
        # Written before runs recorded MACs: the report counts those of the rebuilt network.
        write_run(
            runs / "atac",
            {**common, "activation": "atac", "seed": seed, "best_accuracy": atac,
             "final_accuracy": atac, "trainable_parameters": 89_578},
        )  # fmt: skip
    code, out, err = run_cli(
        capsys, "report", str(tmp_path / "seed0"), str(tmp_path / "seed1"), "--out",
        str(tmp_path / "report"),
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [(r["activation"], r["runs"]) for r in rows] == [("atac", 2), ("relu", 2)]
    atac, relu = rows
    assert relu["best_accuracy_mean"] == pytest.approx(0.6)
    assert relu["best_accuracy_std"] == pytest.approx(2**0.5 * 0.1)
    assert atac["best_accuracy_std"] == pytest.approx(0.0, abs=1e-12)
    # Each compare's command once (its two networks share it), in order.
    results = (tmp_path / "report" / "results.md").read_text()
    commands = results.split("Commands:", 1)[1].split()
    assert " ".join(commands) == "keras-atac compare --seed 0 keras-atac compare --seed 1"
    expected_macs = {
        activation: keras_atac.models.count_macs(
            keras_atac.models.cifar_resnet(8, activation=activation, input_shape=(32, 32, 3))
        )
        for activation in ("relu", "atac")
    }
    assert {r["activation"]: r["macs"] for r in rows} == expected_macs
    # ATAC's two pointwise maps add MACs: 2 * C * floor(C / 4) at every position of its sites.
    assert expected_macs["atac"] > expected_macs["relu"]
    results = (tmp_path / "report" / "results.md").read_text()
    assert "| relu | none | 2 | 77,850 |" in results
    assert "Every run:" in results and (tmp_path / "report" / "curves.png").exists()


def test_report_refuses_runs_of_different_budgets(tmp_path, capsys):
    base = {
        "model": "cifar_resnet8", "dataset": "cifar10", "labels": "fine", "train_images": 100,
        "test_images": 10, "recipe": {"name": "atac_cifar"}, "mechanism": "none",
        "activation": "relu", "best_accuracy": 0.5, "final_accuracy": 0.5,
        "trainable_parameters": 1, "macs": 1, "backend": "jax", "command": "c",
    }  # fmt: skip
    write_run(tmp_path / "a", {**base, "seed": 0, "epochs": 2})
    write_run(tmp_path / "b", {**base, "seed": 1, "epochs": 4})
    code, _, err = run_cli(capsys, "report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert code == 2
    assert "differ in epochs (2, 4)" in err
    code, _, err = run_cli(capsys, "report", str(tmp_path / "none"), "--out", str(tmp_path))
    assert code == 2 and "not a folder" in err
