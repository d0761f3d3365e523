"""nn.serialize: versioned JSON that round-trips every module, is written atomically, and
refuses bad files and bad targets cheaply and clearly."""

import json
import math
import os
import random
import stat
import tracemalloc

import pytest

from nn.modules import (
    MLP,
    MODULE_TYPES,
    BatchNorm1d,
    Dropout,
    Layer,
    Module,
    Neuron,
    Sequential,
)
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


def test_file_is_versioned_json_with_the_module_tree_and_its_state(model, saved):
    document = json.loads(saved.read_text())
    assert document == {
        "format": FORMAT,
        "version": VERSION,
        "module": {"type": "MLP", "config": {"nin": 2, "nouts": [4, 3], "activation": "tanh"}},
        "state": model.state_dict(),
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


def test_save_refuses_something_that_is_not_a_module(tmp_path):
    with pytest.raises(TypeError, match="save stores an nn module, got dict"):
        save({}, tmp_path / "model.json")
    assert os.listdir(tmp_path) == []


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
    del document["state"]
    with pytest.raises(ValueError, match="expected the keys"):
        load(write_json(saved, document))


def test_another_format_is_refused(saved):
    document = json.loads(saved.read_text())
    document["format"] = "something-else"
    with pytest.raises(ValueError, match="format is 'something-else'"):
        load(write_json(saved, document))


@pytest.mark.parametrize("version", [3, 1, "2", True])
def test_wrong_version_is_refused(saved, version):
    document = json.loads(saved.read_text())
    document["version"] = version
    with pytest.raises(ValueError, match="unsupported version"):
        load(write_json(saved, document))


def version_1(model):
    """The document an MLP was saved as before modules of every kind could be."""
    return {
        "format": "autograd-nn-mlp",
        "version": 1,
        "architecture": model.config(),
        "weights": model.state_dict(),
    }


def test_a_version_1_file_still_loads(model, tmp_path):
    loaded = load(write_json(tmp_path / "old.json", version_1(model)))
    assert isinstance(loaded, MLP)
    assert outputs(loaded) == outputs(model)


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
def test_bad_version_1_architecture_is_refused(model, tmp_path, architecture, problem):
    document = {**version_1(model), "architecture": architecture}
    with pytest.raises(ValueError, match=problem):
        load(write_json(tmp_path / "old.json", document))


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        (
            {"type": "MLP", "config": {"nin": 2, "nouts": [4, 3], "activation": "tanh", "x": 1}},
            "bad architecture: MLP: .*unexpected keyword argument 'x'",
        ),
        ({"type": "MLP", "config": {"nin": "2", "nouts": [4], "activation": "tanh"}}, "nin"),
        ({"type": "MLP", "config": {"nin": 2, "nouts": [4, -3], "activation": "tanh"}}, "nouts"),
        ({"type": "MLP", "config": {"nin": 2, "nouts": [3], "activation": "swish"}}, "swish"),
        ({"type": "Pickle", "config": {}}, "unknown module type 'Pickle'; known: .*BatchNorm1d"),
        ({"type": "MLP"}, "a module is an object of type, config"),
        ({"type": "Sequential", "config": {}}, "Sequential takes a list of children"),
        ({"type": "Layer", "config": {}, "children": []}, "Layer takes no children"),
        ({"type": "MLP", "config": [2, [4, 3]]}, "config of MLP must be an object"),
    ],
)
def test_bad_architecture_is_refused(saved, node, problem):
    document = json.loads(saved.read_text())
    document["module"] = node
    with pytest.raises(ValueError, match=problem):
        load(write_json(saved, document))


def test_weights_of_another_architecture_are_refused(saved):
    document = json.loads(saved.read_text())
    document["module"]["config"]["nouts"] = [5, 3]
    with pytest.raises(ValueError, match=r"bad weights: layers\.0\.weight: expected a list of 5"):
        load(write_json(saved, document))


def test_missing_weight_is_refused(saved):
    document = json.loads(saved.read_text())
    del document["state"]["layers.1.bias"]
    with pytest.raises(ValueError, match=r"bad weights.*missing \['layers\.1\.bias'\]"):
        load(write_json(saved, document))


@pytest.mark.parametrize("bad", ["0.5", None, [0.5]])
def test_weight_of_the_wrong_type_is_refused(saved, bad):
    document = json.loads(saved.read_text())
    document["state"]["layers.0.bias"][2] = bad
    with pytest.raises(ValueError, match=r"layers\.0\.bias\[2\]: expected a number"):
        load(write_json(saved, document))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_weight_is_refused(saved, token):
    text = saved.read_text()
    document = json.loads(text)
    first = document["state"]["layers.0.weight"][0][0]
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


# -- every module round-trips ------------------------------------------------------------------


def trained_batchnorm_model():
    """A Sequential of every kind of module, its running statistics moved by training steps."""
    model = Sequential(
        Layer(2, 4, "tanh", seed=0),
        BatchNorm1d(4, momentum=0.3),
        Dropout(0.25, seed=0),
        Layer(4, 2),
    )
    rng = random.Random(0)
    for _ in range(3):
        batch = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(5)]
        model.forward_batch(batch)
    return model.eval()


@pytest.mark.parametrize(
    "make",
    [
        trained_batchnorm_model,
        lambda: Layer(3, 2, "sigmoid", seed=1),
        lambda: Neuron(3, "leaky_relu", seed=1),
        lambda: Sequential(MLP(3, [4, 2], seed=2), BatchNorm1d(2, eps=1e-3, momentum=None)).eval(),
    ],
    ids=["sequential", "layer", "neuron", "nested"],
)
def test_every_module_round_trips_with_its_state(make, tmp_path):
    model = make()
    save(model, tmp_path / "m.json")
    loaded = load(tmp_path / "m.json").eval()
    assert type(loaded) is type(model)
    assert repr(loaded) == repr(model)
    assert loaded.state_dict() == model.state_dict()
    x = [0.5, -1.0, 0.25][: _inputs(model)]
    assert _data(loaded(x)) == _data(model(x))


def _inputs(model):
    first = model
    while isinstance(first, (Sequential, MLP)):
        first = first[0] if isinstance(first, Sequential) else first.layers[0]
    return first.nin


def _data(out):
    return [v.data for v in out] if isinstance(out, list) else out.data


def test_batchnorm_running_statistics_survive_save_and_load(tmp_path):
    model = trained_batchnorm_model()
    save(model, tmp_path / "m.json")
    batchnorm = load(tmp_path / "m.json")[1]
    assert batchnorm.running_mean == model[1].running_mean != [0.0] * 4
    assert batchnorm.num_batches_tracked == 3


@pytest.mark.parametrize("name", ["MLP", "Layer", "BatchNorm1d", "Neuron", "Dropout"])
def test_declared_state_shapes_are_the_built_modules(name):
    configs = {
        "MLP": {"nin": 3, "nouts": [4, 2], "activation": "tanh"},
        "Layer": {"nin": 3, "nout": 5, "activation": "relu"},
        "BatchNorm1d": {"num_features": 3, "eps": 1e-5, "momentum": 0.1},
        "Neuron": {"nin": 2, "activation": "relu"},
        "Dropout": {"p": 0.5},
    }
    cls = MODULE_TYPES[name]
    built = cls(**configs[name]).state_dict()
    declared = cls.state_shapes(**configs[name])
    assert declared == {key: _shape(value) for key, value in built.items()}


def _shape(value):
    return (len(value), *_shape(value[0])) if isinstance(value, list) else ()


def test_save_refuses_a_module_type_that_is_not_registered(tmp_path):
    class Unknown(Module):
        def config(self):
            return {}

    with pytest.raises(TypeError, match="cannot save a Unknown: its type is not registered"):
        save(Sequential(Layer(2, 2), Unknown()), tmp_path / "m.json")
    assert os.listdir(tmp_path) == []


# -- bad input, refused cheaply ----------------------------------------------------------------


def test_a_huge_declared_model_is_refused_before_anything_is_built(saved):
    document = json.loads(saved.read_text())
    document["module"]["config"]["nouts"] = [100000, 100000]
    write_json(saved, document)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"layers\.0\.weight: expected a list of 100000, got"):
            load(saved)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes: 10^10 weights were never made


def test_a_tiny_file_declaring_a_huge_model_is_refused_by_its_missing_weights(tmp_path):
    document = {
        "format": "autograd-nn-mlp",
        "version": 1,
        "architecture": {"nin": 2, "nouts": [100000, 100000], "activation": "relu"},
        "weights": {},
    }
    path = write_json(tmp_path / "tiny.json", document)
    assert path.stat().st_size < 200
    with pytest.raises(ValueError, match=r"bad weights: missing \['layers\.0\.weight'"):
        load(path)


def test_a_ragged_weight_list_is_refused_before_anything_is_built(tmp_path):
    # The first row is complete, so the shape read along first entries would pass.
    weight = [[0.0] * 3] + [[] for _ in range(4)]
    document = {
        "format": FORMAT,
        "version": VERSION,
        "module": {"type": "Layer", "config": {"nin": 3, "nout": 5, "activation": "relu"}},
        "state": {"weight": weight, "bias": [0.0] * 5},
    }
    with pytest.raises(ValueError, match=r"weight\[4\]: expected a list of 3, got a list of 0"):
        load(write_json(tmp_path / "m.json", document))


def test_a_weight_of_10_to_the_400_is_a_value_error(saved):
    text = saved.read_text()
    first = json.loads(text)["state"]["layers.0.weight"][0][0]
    saved.write_text(text.replace(repr(first), "1" + "0" * 400, 1))
    with pytest.raises(ValueError, match=r"layers\.0\.weight\[0\]\[0\]: expected a finite number"):
        load(saved)


def test_json_nested_200000_deep_is_a_value_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match="not a valid model file.*nested too deeply"):
        load(path)


def test_save_to_a_directory_is_refused(model, tmp_path):
    target = tmp_path / "models"
    target.mkdir()
    with pytest.raises(ValueError, match="models: is a directory; save needs a file name"):
        save(model, target)
    assert os.listdir(target) == [] and os.listdir(tmp_path) == ["models"]


def test_save_to_a_symlink_is_refused_and_its_target_kept(model, saved, tmp_path):
    before = saved.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(saved)
    with pytest.raises(ValueError, match="link.json: is a symlink"):
        save(model, link)
    assert link.is_symlink() and saved.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["link.json", "model.json"]


def test_save_to_a_device_is_refused_and_the_device_kept(model):
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    with pytest.raises(ValueError, match="/dev/null: is not a regular file"):
        save(model, "/dev/null")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_permission_error_names_the_target_not_the_temporary_file(model, tmp_path, monkeypatch):
    # Simulated: the tests may run as root, whom a read-only directory does not stop.
    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    target = tmp_path / "model.json"
    with pytest.raises(PermissionError) as caught:
        save(model, target)
    assert caught.value.filename == str(target)
    assert str(target) in str(caught.value) and ".tmp" not in str(caught.value)


# -- safetensors --------------------------------------------------------------------------------


def _batch_norm_model():
    from nn.modules import BatchNorm1d, Layer, Sequential

    model = Sequential(Layer(2, 3, seed=0), BatchNorm1d(3), Layer(3, 2, "linear", seed=1))
    model.layers[1].running_var = [0.5, 2.0, 1.5]
    model.layers[1].num_batches_tracked = 7
    return model.eval()


def test_a_safetensors_file_loads_back_the_same_model(tmp_path):
    model = _batch_norm_model()
    save(model, tmp_path / "model.safetensors")
    loaded = load(tmp_path / "model.safetensors").eval()
    assert loaded.state_dict() == model.state_dict()
    assert [v.data for v in loaded([0.3, -0.8])] == [v.data for v in model([0.3, -0.8])]


def test_a_safetensors_file_is_read_by_the_safetensors_library_with_our_names(torch, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    model = _batch_norm_model()
    save(model, tmp_path / "model.safetensors")
    tensors = load_file(tmp_path / "model.safetensors")
    assert set(tensors) == set(model.state_dict())
    assert tensors["0.weight"].dtype == torch.float64 and tensors["0.weight"].shape == (3, 2)
    assert tensors["1.num_batches_tracked"].dtype == torch.int64
    assert tensors["1.running_var"].tolist() == [0.5, 2.0, 1.5]
    with safe_open(tmp_path / "model.safetensors", "np") as file:
        metadata = file.metadata()
    assert metadata["format"] == FORMAT and json.loads(metadata["module"])["type"] == "Sequential"
    # A PyTorch model of the same structure takes the weights as they are.
    twin = torch.nn.Linear(2, 3, dtype=torch.float64)
    twin.load_state_dict({"weight": tensors["0.weight"], "bias": tensors["0.bias"]})
    assert twin.weight.tolist() == model.state_dict()["0.weight"]


def test_a_damaged_safetensors_file_is_refused_with_a_value_error(tmp_path):
    path = tmp_path / "model.safetensors"
    save(_batch_norm_model(), path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"model\.safetensors: not a valid model file"):
        load(path)


def test_a_safetensors_file_goes_through_every_check_a_json_file_does(tmp_path):
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    save(_batch_norm_model(), tmp_path / "model.safetensors")
    with safe_open(tmp_path / "model.safetensors", "np") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    tensors["1.running_var"] = np.array([0.5, -1.0, 1.5])
    save_file(tensors, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match=r"1\.running_var\[1\]: a variance must be >= 0"):
        load(tmp_path / "bad.safetensors")
