"""nn.cli: `python -m nn train` end to end, its defaults, and its refusals."""

import re
import subprocess
import sys

import pytest

from nn import load
from nn.cli import main
from nn.data import make_blobs, make_moons

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILES = ("model.json", "loss.png", "boundary.png")


def printed_accuracy(stdout: str) -> float:
    """The accuracy from the 'final loss ..., accuracy 97.0%' line, as a fraction."""
    match = re.search(r"^final loss \S+, accuracy (\d+\.\d)%$", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1)) / 100.0


def accuracy(model, X, y):
    """Binary accuracy of a one-output model: score > 0 is class 1."""
    return sum((model(x).data > 0.0) == label for x, label in zip(X, y, strict=True)) / len(X)


def test_python_m_nn_train_writes_the_model_and_both_plots(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "nn", "train", "--epochs", "3", "--samples", "40"]
        + ["--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == sorted(FILES)
    for name in ("loss.png", "boundary.png"):
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)
    model = load(out / "model.json")
    assert model.config() == {"nin": 2, "nouts": [16, 16, 1], "activation": "relu"}
    # The printed accuracy is the saved model's, on the data it was trained on.
    X, y = make_moons(40, noise=0.1, seed=0)
    assert printed_accuracy(result.stdout) == pytest.approx(accuracy(model, X, y), abs=1e-3)


def test_defaults_train_a_good_moons_model(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path)]) == 0
    assert printed_accuracy(capsys.readouterr().out) >= 0.97
    X, y = make_moons(100, noise=0.1, seed=0)
    assert accuracy(load(tmp_path / "model.json"), X, y) >= 0.97


def test_more_than_two_classes_default_to_cross_entropy_with_one_output_per_class(tmp_path, capsys):
    argv = ["train", "--dataset", "blobs", "--samples", "30", "--epochs", "2"]
    assert main([*argv, "--hidden", "8", "--no-jit", "--out", str(tmp_path)]) == 0
    assert "cross_entropy loss" in capsys.readouterr().out
    model = load(tmp_path / "model.json")
    assert model.nouts == [8, 3]
    X, _ = make_blobs(30, centers=3, seed=0)
    assert len(model(X[0])) == 3


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        (["--optimizer", "sgd", "--momentum", "0.9", "--batch-size", "1"], "SGD("),
        (["--optimizer", "rmsprop", "--lr", "0.005", "--loss", "hinge"], "RMSprop("),
        (["--loss", "mse", "--activation", "tanh", "--hidden", "4,4", "--l2", "1e-4"], "mse loss"),
        (["--hidden", ""], "nouts=[1]"),  # no hidden layer: a linear classifier
    ],
)
def test_options_reach_the_training_run(tmp_path, capsys, options, shown):
    argv = ["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path), *options]
    assert main(argv) == 0
    assert shown in capsys.readouterr().out
    assert all((tmp_path / name).exists() for name in FILES)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--hidden", "abc"], "argument --hidden: expected layer sizes"),
        (["--hidden", "16,0"], "argument --hidden: expected layer sizes"),
        (["--lr", "-0.1"], "argument --lr: expected a number > 0"),
        (["--lr", "inf"], "argument --lr: expected a finite number"),
        (["--epochs", "-5"], "argument --epochs: expected a whole number >= 1"),
        (["--epochs", "2.5"], "argument --epochs: expected a whole number >= 1"),
        (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice"),
        (["--dataset", "spiral", "--loss", "hinge"], "hinge is for two classes and spiral has 3"),
        (["--dataset", "xor", "--samples", "2"], "argument --samples: make_xor expected"),
        (["--momentum", "0.9"], "adam takes no momentum"),
    ],
)
def test_bad_argument_prints_usage_and_exits_2(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path / "run"), *options])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("usage: python -m nn train")
    assert message in stderr
    assert not (tmp_path / "run").exists()


def test_bad_argument_exit_status_of_the_program_is_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nn", "train", "--dataset", "mnist"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "invalid choice: 'mnist'" in result.stderr


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_a_diverging_run_reports_the_epoch_and_exits_1(tmp_path, capsys):
    argv = ["train", "--optimizer", "sgd", "--lr", "1e300", "--epochs", "2", "--samples", "20"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 1
    assert "error: the loss is nan at epoch 1/2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
