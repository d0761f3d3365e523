"""nn.cli: `python -m nn train` end to end, its defaults, its refusals, and its files."""

import os
import re
import signal
import subprocess
import sys

import pytest

import nn.cli
from nn import load, losses
from nn.cli import main
from nn.data import make_blobs, make_moons, train_test_split

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILES = ("model.json", "loss.png", "boundary.png")
INTERRUPTED = "interrupted (Ctrl-C): stopped, no file left half-written"


def printed_accuracies(stdout: str) -> tuple[float, float]:
    """(training, test) accuracy from the 'final loss: training 0.0123, test 0.0456;
    accuracy: training 97.0%, test 96.0%' line, as fractions."""
    pattern = r"^final loss: training \S+, test \S+; accuracy: training (\S+)%, test (\S+)%$"
    match = re.search(pattern, stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1)) / 100.0, float(match.group(2)) / 100.0


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
    # The printed accuracies are the saved model's, on the part it trained on and the rest.
    X_train, X_test, y_train, y_test = train_test_split(*make_moons(40, noise=0.1, seed=0))
    assert "40 samples (30 training, 10 test)" in result.stdout
    train_accuracy, test_accuracy = printed_accuracies(result.stdout)
    assert train_accuracy == pytest.approx(accuracy(model, X_train, y_train), abs=1e-3)
    assert test_accuracy == pytest.approx(accuracy(model, X_test, y_test), abs=1e-3)
    test_loss = losses.binary_cross_entropy([model(x) for x in X_test], y_test).data
    assert f", test {test_loss:.4f}; accuracy" in result.stdout


def test_defaults_train_a_good_moons_model_and_test_it_on_held_out_samples(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    assert "100 samples (75 training, 25 test)" in stdout
    train_accuracy, test_accuracy = printed_accuracies(stdout)
    assert train_accuracy >= 0.97 and test_accuracy >= 0.95
    _, X_test, _, y_test = train_test_split(*make_moons(100, noise=0.1, seed=0))
    assert accuracy(load(tmp_path / "model.json"), X_test, y_test) == test_accuracy


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
        (["--test-size", "0"], "argument --test-size: expected a number between 0 and 1, got '0'"),
        (["--test-size", "1"], "argument --test-size: expected a number between 0 and 1, got '1'"),
        (["--test-size", "abc"], "argument --test-size: expected a finite number, got 'abc'"),
        (["--samples", "20", "--test-size", "0.99"], "cannot split 20 samples"),
        (["--dataset", "digits", "--samples", "5000"], "digits has 1797 samples, got 5000"),
        # The first 12 digits are 0..9, 0, 1: one sample of 2..9, which no split can stratify.
        (["--dataset", "digits", "--samples", "12"], "cannot split 12 samples: train_test_split"),
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
    assert re.search(r"^error: the loss is \S+ at epoch [12]/2", capsys.readouterr().err, re.M)
    assert not (tmp_path / "run").exists()


def test_digits_train_an_mlp_with_64_inputs_and_10_outputs_without_a_boundary_plot(
    tmp_path, capsys
):
    argv = ["train", "--dataset", "digits", "--samples", "200", "--hidden", "16", "--epochs", "5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    assert "data: digits, 200 samples (150 training, 50 test), 10 classes" in stdout
    assert "cross_entropy loss" in stdout
    # A decision boundary is drawn in the plane: 64 pixels have no such picture.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loss.png", "model.json"]
    model = load(tmp_path / "model.json")
    assert model.config() == {"nin": 64, "nouts": [16, 10], "activation": "relu"}
    train_accuracy, test_accuracy = printed_accuracies(stdout)
    assert train_accuracy > 0.5 and test_accuracy > 0.5  # 10 classes: chance is 0.1


def test_progress_bar_names_the_held_out_figures_test_as_the_summary_does(tmp_path, capsys):
    assert main(["train", "--samples", "40", "--epochs", "2", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "test_loss=" in captured.err and "test_accuracy=" in captured.err
    assert "val_" not in captured.err
    assert "final loss: training" in captured.out and ", test " in captured.out


def test_test_size_sets_the_held_out_share(tmp_path, capsys):
    argv = ["train", "--samples", "40", "--epochs", "1", "--test-size", "0.5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert "40 samples (20 training, 20 test)" in capsys.readouterr().out


@pytest.mark.parametrize(("options", "shown"), [([], ", jit"), (["--jit"], ", jit")])
def test_jit_is_the_default_and_still_accepted(tmp_path, capsys, options, shown):
    argv = ["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path), *options]
    assert main(argv) == 0
    assert re.search(r"^training: .*batch size 16, jit$", capsys.readouterr().out, re.MULTILINE)


def test_no_jit_trains_with_the_eager_engine(tmp_path, capsys, monkeypatch):
    calls = []
    real_fit = nn.cli.fit
    monkeypatch.setattr(
        nn.cli, "fit", lambda *a, **kw: calls.append(kw["jit"]) or real_fit(*a, **kw)
    )
    argv = ["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path), "--no-jit"]
    assert main(argv) == 0
    assert calls == [False]
    assert re.search(r"^training: .*batch size 16$", capsys.readouterr().out, re.MULTILINE)


# -- --out is checked before training; files are complete or absent -----------------------------


@pytest.fixture
def no_training(monkeypatch):
    """`fit` replaced by one that fails the test if it is called."""

    def fit(*args, **kwargs):
        pytest.fail("fit was called: training started before --out was checked")

    monkeypatch.setattr(nn.cli, "fit", fit)


def expect_usage_error(argv, capsys, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: python -m nn train")
    assert message in captured.err
    assert "training:" not in captured.out


def test_out_that_is_a_file_is_a_usage_error_before_training(tmp_path, capsys, no_training):
    (tmp_path / "taken").write_text("not a directory")
    for out in (tmp_path / "taken", tmp_path / "taken" / "run"):
        expect_usage_error(
            ["train", "--out", str(out)], capsys, f"{tmp_path / 'taken'} is not a directory"
        )
    assert (tmp_path / "taken").read_text() == "not a directory"


@pytest.mark.parametrize("name", ["model.json", "loss.png", "boundary.png"])
def test_a_directory_where_an_output_file_goes_is_a_usage_error_before_training(
    tmp_path, capsys, no_training, name
):
    (tmp_path / name).mkdir()
    message = f"argument --out: {tmp_path / name} exists and is not a file"
    expect_usage_error(["train", "--out", str(tmp_path)], capsys, message)
    assert [path.name for path in tmp_path.iterdir()] == [name]  # nothing else written


@pytest.fixture
def unwritable_directory(tmp_path):
    """A directory no file can be created in: read-only by its mode, or /sys for root."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    candidates = [directory, "/sys"]
    for candidate in candidates:
        try:
            with open(os.path.join(candidate, ".probe"), "x"):
                pass
        except OSError:
            yield str(candidate)
            break
        os.unlink(os.path.join(candidate, ".probe"))
    else:
        pytest.skip("no directory here refuses writes (root on a writable /sys?)")
    directory.chmod(0o755)


def test_an_unwritable_out_is_a_usage_error_before_training(
    unwritable_directory, capsys, no_training
):
    for out in (unwritable_directory, os.path.join(unwritable_directory, "new", "run")):
        message = f"argument --out: cannot write in {unwritable_directory}"
        expect_usage_error(["train", "--out", out], capsys, message)


def test_existing_files_in_out_are_replaced(tmp_path, capsys):
    (tmp_path / "model.json").write_text("an older model")
    assert main(["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert load(tmp_path / "model.json").nouts == [16, 16, 1]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILES)


def test_a_failure_while_writing_leaves_every_file_as_it_was(tmp_path, capsys, monkeypatch):
    (tmp_path / "model.json").write_text("an older model")

    def broken_boundary(*args, **kwargs):
        raise RuntimeError("the plot failed")

    monkeypatch.setattr(nn.cli.plot, "decision_boundary", broken_boundary)
    with pytest.raises(RuntimeError, match="the plot failed"):
        main(["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path)])
    # model.json and loss.png were written under temporary names: removed, not renamed.
    assert [path.name for path in tmp_path.iterdir()] == ["model.json"]
    assert (tmp_path / "model.json").read_text() == "an older model"


# -- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_during_training_exits_130_with_one_line_and_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    def interrupted_fit(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn.cli, "fit", interrupted_fit)
    assert main(["train", "--samples", "20", "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip() == INTERRUPTED
    assert not (tmp_path / "run").exists()


def test_ctrl_c_while_writing_leaves_no_file_half_written(tmp_path, capsys, monkeypatch):
    def interrupted_boundary(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn.cli.plot, "decision_boundary", interrupted_boundary)
    assert main(["train", "--samples", "20", "--epochs", "1", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip().endswith(INTERRUPTED)
    assert list(tmp_path.iterdir()) == []


def test_sigint_to_python_m_nn_train_exits_130_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "nn", "train", "--epochs", "100000", "--out", str(out)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # The settings line is printed just before `fit` starts; the progress bar (on stderr)
    # showing a first epoch means training is under way.
    for line in process.stdout:
        if line.startswith("training:"):
            break
    progress = ""
    while "1/100000" not in progress:
        chunk = process.stderr.read(64)
        assert chunk, f"the program ended before training started: {progress}"
        progress += chunk
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in stderr
    assert not out.exists()


def test_sigint_while_python_m_nn_is_still_importing_exits_130_with_one_line(tmp_path):
    # What `python -m nn` sets up first, then a Ctrl-C in the middle of the imports that follow
    # (NumPy, matplotlib: a second or two): the same handler, made to fire at a known moment.
    script = (
        "import os, signal, sys\n"
        "sys.orig_argv = [sys.executable, '-m', 'nn', 'train']\n"
        "import nn._starting\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "import numpy\n"
        "print('not reached')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 130
    assert result.stderr.strip() == "interrupted (Ctrl-C) while starting: nothing was done"
    assert result.stdout == ""


def test_importing_nn_elsewhere_leaves_ctrl_c_alone(tmp_path):
    # Compared with the handler before the import, not with Python's default: a process started
    # in the background by a shell begins with Ctrl-C ignored, and must keep it so.
    script = (
        "import signal\nbefore = signal.getsignal(signal.SIGINT)\nimport nn\n"
        "print(signal.getsignal(signal.SIGINT) is before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
