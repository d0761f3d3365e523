"""nn.cli: `python -m nn train --dataset names`, a GPT trained on names, its report and files."""

import math
import re

import pytest

from nn import GPT, load
from nn.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_train_names_reports_the_held_out_loss_samples_names_and_writes_the_gpt(tmp_path, capsys):
    out = tmp_path / "names"
    status = main(["train", "--dataset", "names", "--samples", "24", "--epochs", "1"] + [
        "--out", str(out)
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0
    assert "data: names, 24 names (18 training, 6 test)" in printed
    match = re.search(r"final loss: training (\S+), test (\S+) \(perplexity (\S+) of 27", printed)
    assert match, printed
    test_loss, perplexity = float(match.group(2)), float(match.group(3))
    assert perplexity == pytest.approx(math.exp(test_loss), abs=0.01)
    names = re.search(r"^sampled names: (.*)$", printed, re.MULTILINE).group(1).split(", ")
    assert len(names) == 10
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in names)
    assert sorted(path.name for path in out.iterdir()) == ["loss.png", "model.json"]
    assert (out / "loss.png").read_bytes().startswith(PNG_SIGNATURE)
    model = load(out / "model.json")
    assert isinstance(model, GPT) and model.config()["vocab_size"] == 27


def test_more_names_than_there_are_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--dataset", "names", "--samples", "40000", "--out", str(tmp_path)])
    assert stopped.value.code == 2
    assert "argument --samples: names has 32033 samples, got 40000" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
