"""nn.serialize: versioned JSON that round-trips, is written atomically and refuses bad files."""

import json
import math
import os

import pytest

from nn.modules import MLP
from nn.serialize import FORMAT, VERSION, load, save

INPUTS = [[0.5, -1.0], [2.0, 0.25], [-1.5, -0.75]]


def outputs(model):
    return [[v.data for v in model(x)] for x in INPUTS]


@pytest.fixture
def model():
    return MLP(2, [4, 3], activation="tanh", seed=1)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.json"
    save(model, path)
    return path


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path


def test_save_then_load_gives_identical_outputs(model, saved):
    loaded = load(saved)
    assert outputs(loaded) == outputs(model)
    assert loaded.config() == model.config()


def test_load_accepts_a_str_path(model, saved):
    assert outputs(load(str(saved))) == outputs(model)


def test_file_is_versioned_json_with_architecture_and_weights(model, saved):
    document = json.loads(saved.read_text())
    assert document == {
        "format": FORMAT,
        "version": VERSION,
        "architecture": {"nin": 2, "nouts": [4, 3], "activation": "tanh"},
        "weights": model.state_dict(),
    }


def test_save_replaces_an_existing_file_and_leaves_no_temporary(model, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old")
    save(model, path)
    assert outputs(load(path)) == outputs(model)
    assert os.listdir(tmp_path) == ["model.json"]


def test_failed_save_does_not_clobber_the_existing_file(model, saved, tmp_path):
    before = saved.read_bytes()
    model.layers[0].neurons[1].w[0].data = math.nan
    with pytest.raises(ValueError, match=r"layers\.0\.weight\[1\]\[0\].*finite.*nan"):
        save(model, saved)
    assert saved.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.json"]


def test_save_refuses_something_that_is_not_an_mlp(tmp_path):
    with pytest.raises(TypeError, match="save stores an MLP, got dict"):
        save({}, tmp_path / "model.json")


def test_truncated_file_is_refused(saved):
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not a valid model file"):
        load(saved)


def test_binary_garbage_is_refused(saved):
    saved.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not a valid model file"):
        load(saved)


def test_json_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        load(write_json(tmp_path / "m.json", [1, 2, 3]))


def test_missing_key_is_refused(saved):
    document = json.loads(saved.read_text())
    del document["weights"]
    with pytest.raises(ValueError, match="expected the keys"):
        load(write_json(saved, document))


def test_another_format_is_refused(saved):
    document = json.loads(saved.read_text())
    document["format"] = "something-else"
    with pytest.raises(ValueError, match="format is 'something-else'"):
        load(write_json(saved, document))


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_wrong_version_is_refused(saved, version):
    document = json.loads(saved.read_text())
    document["version"] = version
    with pytest.raises(ValueError, match="unsupported version"):
        load(write_json(saved, document))


@pytest.mark.parametrize(
    ("architecture", "problem"),
    [
        ({"nin": 2, "nouts": [4, 3]}, "architecture must hold"),
        ({"nin": "2", "nouts": [4, 3], "activation": "tanh"}, "bad architecture.*nin"),
        ({"nin": 2, "nouts": [4, -3], "activation": "tanh"}, "bad architecture.*nouts"),
        ({"nin": 2, "nouts": [4, 3], "activation": "swish"}, "bad architecture.*swish"),
        ([2, [4, 3], "tanh"], "architecture must hold"),
    ],
)
def test_bad_architecture_is_refused(saved, architecture, problem):
    document = json.loads(saved.read_text())
    document["architecture"] = architecture
    with pytest.raises(ValueError, match=problem):
        load(write_json(saved, document))


def test_weights_of_another_architecture_are_refused(saved):
    document = json.loads(saved.read_text())
    document["architecture"]["nouts"] = [5, 3]
    with pytest.raises(ValueError, match=r"bad weights: layers\.0\.weight: expected a list of 5"):
        load(write_json(saved, document))


def test_missing_weight_is_refused(saved):
    document = json.loads(saved.read_text())
    del document["weights"]["layers.1.bias"]
    with pytest.raises(ValueError, match=r"bad weights.*missing \['layers\.1\.bias'\]"):
        load(write_json(saved, document))


@pytest.mark.parametrize("bad", ["0.5", None, [0.5]])
def test_weight_of_the_wrong_type_is_refused(saved, bad):
    document = json.loads(saved.read_text())
    document["weights"]["layers.0.bias"][2] = bad
    with pytest.raises(ValueError, match=r"layers\.0\.bias\[2\]: expected a number"):
        load(write_json(saved, document))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_weight_is_refused(saved, token):
    text = saved.read_text()
    document = json.loads(text)
    first = document["weights"]["layers.0.weight"][0][0]
    saved.write_text(text.replace(repr(first), token, 1))
    with pytest.raises(ValueError, match=r"layers\.0\.weight\[0\]\[0\]: expected a finite number"):
        load(saved)


def test_refused_load_state_dict_leaves_the_model_untouched(model):
    before = model.state_dict()
    state = model.state_dict()
    state["layers.0.weight"][0][0] = 123.0  # a good entry, written first if writes were eager
    state["layers.1.bias"][1] = math.inf
    with pytest.raises(ValueError, match=r"layers\.1\.bias\[1\]"):
        model.load_state_dict(state)
    assert model.state_dict() == before


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.json")
