"""The error-message table: each mistake a user is likely to make, the exception it raises and
what the message must say. One row per message; a message that changes changes here.

Each row is (id, the call that goes wrong, the exception type, a pattern the message matches).
The pattern names the problem (the value, the argument, the file) and, where there is one, the
way out.
"""

import json
import re

import pytest

import nn
import nn.cli
from autograd_core import Value, jit, ops
from nn import MLP, BatchNorm1d, Layer, Sequential, optim


def _moons_fit(**changes):
    X, y = nn.data.make_moons(20, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    arguments = dict(loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1,
                     progress=False)  # fmt: skip
    arguments.update(changes)
    return nn.fit(model, X, arguments.pop("y", y), **arguments)


def _hooked_backward(result):
    x = Value(2.0)
    y = x * 3.0
    y.register_hook(lambda g: result)
    y.backward()


def _jit_with_hook():
    def f(x):
        y = x.sin()
        y.register_hook(lambda g: 0.0)
        return y * x

    return jit(f).value_and_grad(1.5)


def _defop_short():
    op = ops.defop("short_rule", float.__mul__, lambda out, x, y: (y,))
    try:
        return op(Value(2.0), Value(3.0)).backward()
    finally:
        del ops.OPS["short_rule"]


def _load_text(tmp_path, text):
    path = tmp_path / "model.json"
    path.write_text(text)
    return nn.load(path)


def _saved_batch_norm(tmp_path):
    model = Sequential(Layer(2, 2, seed=0), BatchNorm1d(2))
    nn.save(model, tmp_path / "model.json")
    return json.loads((tmp_path / "model.json").read_text())


def _negative_running_var(tmp_path):
    document = _saved_batch_norm(tmp_path)
    document["state"]["1.running_var"][1] = -1.0
    return _load_text(tmp_path, json.dumps(document))


def _duplicate_key(tmp_path):
    text = json.dumps(_saved_batch_norm(tmp_path))
    return _load_text(tmp_path, text.replace('"format"', '"version": 2, "format"', 1))


def _cli(*argv):
    return nn.cli.main(["train", *argv])


ROWS = [
    # -- the engine ---------------------------------------------------------------------------
    ("jit of several outputs", lambda tmp: jit(lambda x: [x * 2.0, x * 3.0]).value_and_grad(1.0),
     TypeError, r"the function must return a Value or a number, got list"),
    ("jit of a hook", lambda tmp: _jit_with_hook(), ValueError,
     r"cannot trace a gradient hook: a Value the function uses has one \(computed by 'sin'\).*"
     r"without jit"),
    ("defop partial count", lambda tmp: _defop_short(), ValueError,
     r"op 'short_rule': its partials gave 1 partial for 2 input\(s\); they must return a tuple "
     r"of one partial per input"),
    ("hook returns a huge int", lambda tmp: _hooked_backward(10**400), ValueError,
     r"a gradient hook returned a number too large for a float"),
    ("backward of a module's outputs", lambda tmp: MLP(2, [3])([1.0, 2.0]).backward(),
     TypeError, r"backward\(\) starts from one number, and these are 3 outputs of a module: "
     r"compute a loss from them first"),
    ("a model called on a batch", lambda tmp: MLP(2, [1])([[1.0, 2.0]] * 4), ValueError,
     r"expected 2 inputs, got 4: a batch of 4 samples\? .*nn\.predict\(model, X\).*"
     r"model\.forward_batch\(X\)"),
    # -- fit: refused before the first step ---------------------------------------------------
    ("validation data of another width",
     lambda tmp: _moons_fit(validation_data=([[0.0, 1.0, 2.0]], [1])), ValueError,
     r"fit validation_data: its samples have 3 features, the training samples 2"),
    ("a callback that is no function", lambda tmp: _moons_fit(callbacks=[3]), TypeError,
     r"fit: callback 0 is not a function, got int: 3"),
    ("hinge labels mixing -1 and 0", lambda tmp: _moons_fit(y=[-1, 0] * 10), ValueError,
     r"fit: loss 'hinge' takes labels 0/1 or -1/\+1, got -1 and 0 together"),
    ("a label out of range", lambda tmp: _moons_fit(y=[0, 2] * 10), ValueError,
     r"fit: label 2 of sample 1 is not a class this model can output: expected 0\.\.1 "
     r"\(or -1/\+1 for hinge\)"),
    ("a label that is no whole number", lambda tmp: _moons_fit(y=[0.5] * 20, loss="bce"),
     ValueError, r"fit: label 0\.5 of sample 0 is not a class index \(an int, or a whole float"),
    # -- predict -------------------------------------------------------------------------------
    ("predict of no samples", lambda tmp: nn.predict(MLP(2, [1]), []), ValueError,
     r"predict: X has no samples; pass at least one row"),
    ("predict with an unknown loss", lambda tmp: nn.predict(MLP(2, [1]), [[0.0, 1.0]],
     loss="bogus"), ValueError, r"predict: unknown loss 'bogus': expected one of hinge, bce"),
    ("predict_proba of one row", lambda tmp: nn.predict_proba(MLP(2, [1]), [0.0, 1.0]),
     ValueError, r"^predict_proba: X is one row of numbers; pass a list of samples, e\.g\. \[x\]"),
    # -- save and load -------------------------------------------------------------------------
    ("save to an empty name", lambda tmp: nn.save(MLP(2, [1]), ""), ValueError,
     r"^save needs a file name, got an empty one$"),
    ("save to a number", lambda tmp: nn.save(MLP(2, [1]), 3), TypeError,
     r"save needs a file name \(a str or a pathlib\.Path\), got int"),
    ("save into a missing directory", lambda tmp: nn.save(MLP(2, [1]), tmp / "no" / "m.json"),
     FileNotFoundError, r"cannot save to .*/no/m\.json: No such file or directory"),
    ("load a negative variance", _negative_running_var, ValueError,
     r"model\.json: bad weights: 1\.running_var\[1\]: a variance must be >= 0, got -1\.0"),
    ("load a key written twice", _duplicate_key, ValueError,
     r"model\.json: the key 'version' appears twice in one JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "pattern"), [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])  # fmt: skip
def test_the_message_names_the_problem(tmp_path, call, error, pattern):
    with pytest.raises(error) as caught:
        call(tmp_path)
    if pattern is not None:
        assert re.search(pattern, str(caught.value)), str(caught.value)


CLI_ROWS = [
    (["--samples", "1000000000"],
     r"argument --samples: 1000000000 samples and hidden layers \[16, 16\] \(490 weights\) "
     r"need about [\d,.]+ GB of memory; this machine has [\d,.]+ [GM]B"),
    (["--hidden", "100000000"],
     r"argument --hidden: 100 samples and hidden layers \[100000000\] \(1,300,000,010 weights\) "
     r"need about [\d,.]+ GB of memory"),
    (["--out", ""], r"argument --out: expected a directory name, got an empty one \(\. is here\)"),
    (["--momentum", "2"], r"argument --momentum: expected a number >= 0 and < 1, got '2'"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "pattern"), CLI_ROWS, ids=[row[0][0] for row in CLI_ROWS])
def test_the_command_line_refuses_at_once_with_exit_2(tmp_path, capsys, argv, pattern):
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as caught:
        _cli(*argv)
    assert caught.value.code == 2
    assert re.search(pattern, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()  # nothing was trained or written


def test_the_unused_parameter_warning_names_the_likely_cause():
    X, y = nn.data.make_moons(20, noise=0.1, seed=0)
    model, other = MLP(2, [4, 1], seed=0), MLP(2, [4, 1], seed=1)
    optimizer = optim.SGD(other.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match=r"built on another model's parameters"):
        nn.fit(model, X, y, loss="hinge", optimizer=optimizer, epochs=1, progress=False,
               jit=False)  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [{"validation_data": ([[0.0, 1.0, 2.0]], [1])}, {"callbacks": [3]}],
    ids=["validation width", "callback"],
)
def test_a_refused_fit_has_not_changed_the_model(changes):
    X, y = nn.data.make_moons(20, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    before = [p.data for p in model.parameters()]
    with pytest.raises((ValueError, TypeError)):
        nn.fit(model, X, y, loss="hinge", optimizer=optim.SGD(model.parameters(), lr=0.1),
               epochs=1, progress=False, **changes)  # fmt: skip
    assert [p.data for p in model.parameters()] == before


def test_a_hook_returning_a_value_in_a_plain_backward_gives_float_gradients():
    x = Value(2.0)
    y = x * 3.0
    y.register_hook(lambda g: Value(2.0) * g)
    y.backward()
    assert type(x.grad) is float and x.grad == 6.0


def test_a_bytes_path_saves_and_loads_as_a_str_path_does(tmp_path):
    model = MLP(2, [3, 1], seed=0)
    path = bytes(tmp_path / "model.json")
    nn.save(model, path)
    assert nn.load(path).state_dict() == nn.load(tmp_path / "model.json").state_dict()
    assert nn.load(path).state_dict() == model.state_dict()
