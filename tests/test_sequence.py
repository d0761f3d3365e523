"""nn.sequence: embeddings, norms, causal self-attention and the GPT against their PyTorch
twins (float64, 1e-12, outputs and every gradient), finite differences, state, errors, sampling."""

import json
import math
import random

import pytest
from helpers import leaf_central_difference

from autograd_core import Value, draw_dot, vsum
from nn import load, save, to_torch
from nn.data import CharTokenizer, names_tokenizer
from nn.modules import MODULE_TYPES
from nn.sequence import (
    GPT,
    Block,
    CausalSelfAttention,
    Embedding,
    LayerNorm,
    Linear,
    RMSNorm,
    generate,
    take,
)

TOLERANCE = {"rel": 1e-12, "abs": 1e-13}


def _flat(tree):
    if isinstance(tree, Value):
        return [tree]
    if isinstance(tree, (list, tuple)):
        return [x for child in tree for x in _flat(child)]
    return [tree]


def _numbers(tree):
    return [x.data if isinstance(x, Value) else x for x in _flat(tree)]


def _random(shape, seed, low=-1.5, high=1.5):
    rng = random.Random(seed)

    def build(dims):
        if not dims:
            return rng.uniform(low, high)
        return [build(dims[1:]) for _ in range(dims[0])]

    return build(list(shape))


def _weighted_sum(outputs, seed):
    """sum_i c_i * out_i with fixed random c: a loss whose gradient reaches every output."""
    flat = _flat(outputs)
    coefficients = _random((len(flat),), seed)
    return vsum([c * o for c, o in zip(coefficients, flat, strict=True)]), coefficients


def assert_equals_twin(torch, module, inputs, *, ids=False):
    """Our module and `to_torch(module)` on the same inputs (float vectors, or token ids):
    the outputs, the gradient of a weighted sum of them for every parameter, and (for float
    inputs) for every input, equal to 1e-12."""
    if ids:
        ours_in = inputs
    elif isinstance(inputs[0], list):
        ours_in = [[Value(x) for x in row] for row in inputs]
    else:
        ours_in = [Value(x) for x in inputs]
    out = module(ours_in)
    loss, coefficients = _weighted_sum(out, seed=99)
    module.zero_grad()
    loss.backward()

    net = to_torch(module)
    if ids:
        theirs_in = torch.tensor([inputs])
    else:
        theirs_in = torch.tensor([inputs], dtype=torch.float64, requires_grad=True)
    theirs = net(theirs_in)
    (theirs.flatten() * torch.tensor(coefficients, dtype=torch.float64)).sum().backward()

    assert _numbers(out) == pytest.approx(theirs.flatten().tolist(), **TOLERANCE)
    if not ids:
        assert [x.grad for x in _flat(ours_in)] == pytest.approx(
            theirs_in.grad.flatten().tolist(), **TOLERANCE
        )
    twin_grads = {name.partition(".")[2]: p.grad for name, p in net.named_parameters()}
    ours = dict(module.named_parameters())
    assert set(ours) == set(twin_grads)
    for name, tree in ours.items():
        grads = [p.grad for p in _flat(tree)]
        assert grads == pytest.approx(twin_grads[name].flatten().tolist(), **TOLERANCE), name


# -- each module equals its PyTorch twin -------------------------------------------------------


def test_embedding_rows_and_their_gradients_equal_torch(torch):
    # id 2 read twice: its row gets the sum of both positions' gradients.
    assert_equals_twin(torch, Embedding(5, 3, seed=0), [2, 0, 2, 4], ids=True)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_torch(torch, bias):
    assert_equals_twin(torch, Linear(4, 3, bias=bias, seed=1), _random((4,), seed=2))


@pytest.mark.parametrize(
    "options",
    [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 0.1}],
    ids=["affine", "plain", "no-bias", "eps"],
)
def test_layer_norm_equals_torch(torch, options):
    norm = LayerNorm(5, **options)
    for i, p in enumerate(norm.parameters()):  # away from 1 and 0, so they matter
        p.data = 0.5 + 0.1 * i
    assert_equals_twin(torch, norm, _random((5,), seed=3))


@pytest.mark.parametrize(
    "options", [{}, {"elementwise_affine": False}, {"eps": 1e-5}], ids=["affine", "plain", "eps"]
)
def test_rms_norm_equals_torch(torch, options):
    norm = RMSNorm(5, **options)
    for i, p in enumerate(norm.parameters()):
        p.data = 0.5 + 0.1 * i
    assert_equals_twin(torch, norm, _random((5,), seed=4))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("dim", "n_head", "length"), [(4, 1, 3), (6, 3, 5), (8, 2, 1)])
def test_causal_self_attention_equals_torch(torch, bias, dim, n_head, length):
    attention = CausalSelfAttention(dim, n_head, block_size=6, bias=bias, seed=5)
    if bias:
        for p in [*attention.in_proj_bias, *attention.out_proj.bias]:
            p.data = random.Random(id(p)).uniform(-0.5, 0.5)
    assert_equals_twin(torch, attention, _random((length, dim), seed=6))


@pytest.mark.parametrize("norm", ["rms", "layer"])
@pytest.mark.parametrize("bias", [False, True])
def test_block_equals_torch(torch, norm, bias):
    block = Block(8, 2, block_size=4, bias=bias, norm=norm, seed=7)
    assert_equals_twin(torch, block, _random((4, 8), seed=8))


@pytest.mark.parametrize(
    "config",
    [
        {"vocab_size": 27},  # microgpt's
        {"vocab_size": 7, "block_size": 5, "n_embd": 6, "n_head": 2, "n_layer": 2},
        {
            "vocab_size": 7,
            "block_size": 4,
            "n_embd": 8,
            "n_layer": 1,
            "bias": True,
            "norm": "layer",
        },
    ],
    ids=["microgpt", "two-layers", "layer-norm-bias"],
)
def test_gpt_logits_and_gradients_equal_torch(torch, config):
    model = GPT(**config, seed=9)
    length = min(model.block_size, 6)
    ids = [random.Random(i).randrange(model.vocab_size) for i in range(length)]
    assert_equals_twin(torch, model, ids, ids=True)


def test_torch_gpt_maps_a_batch_of_ids_to_logits_of_every_position(torch):
    model = GPT(11, block_size=5, n_embd=8, n_head=2, seed=0).eval()
    batch = [[0, 3, 4, 1, 10], [0, 7, 7, 2, 2]]
    logits = to_torch(model)(torch.tensor(batch))
    assert logits.shape == (2, 5, 11)
    for row, ids in zip(logits, batch, strict=True):
        assert _numbers(model(ids)) == pytest.approx(row.flatten().tolist(), **TOLERANCE)


def test_attention_weights_are_torchs_per_head_and_causal(torch):
    attention = CausalSelfAttention(6, 3, block_size=4, bias=False, seed=1)
    xs = _random((4, 6), seed=2)
    weights = attention.attention(xs)
    net = to_torch(attention)[0]
    future = torch.ones(4, 4, dtype=torch.bool).triu(1)
    x = torch.tensor([xs], dtype=torch.float64)
    _, theirs = torch.nn.MultiheadAttention.forward(
        net, x, x, x, attn_mask=future, average_attn_weights=False
    )
    assert _flat(weights) == pytest.approx(theirs.flatten().tolist(), **TOLERANCE)
    for head in weights:
        for t, row in enumerate(head):
            assert sum(row) == pytest.approx(1.0, rel=1e-15)
            assert row[t + 1 :] == [0.0] * (3 - t)


def test_a_later_position_does_not_change_an_earlier_ones_logits():
    model = GPT(9, block_size=5, n_embd=8, n_head=2, seed=3)
    short = _numbers(model([1, 2, 3]))
    longer = _numbers(model([1, 2, 3, 8, 0])[:3])
    assert short == longer


# -- gradients against finite differences ------------------------------------------------------


def test_gpt_gradients_equal_central_differences():
    model = GPT(6, block_size=4, n_embd=4, n_head=2, seed=4)
    ids, targets = [0, 3, 5, 1], [3, 5, 1, 0]

    def loss():
        from autograd_core import ops

        rows = model(ids)
        return vsum([ops.LOGSUMEXP(*r) - r[y] for r, y in zip(rows, targets, strict=True)])

    model.zero_grad()
    loss().backward()
    rng = random.Random(0)
    for p in rng.sample(model.parameters(), 40):
        expected = leaf_central_difference(loss, p)
        assert p.grad == pytest.approx(expected, rel=1e-5, abs=1e-8), p.label


# -- state: PyTorch's names and shapes, save and load ------------------------------------------


def _configs():
    return {
        "Embedding": {"num_embeddings": 5, "embedding_dim": 3},
        "Linear": {"in_features": 3, "out_features": 2, "bias": False},
        "LayerNorm": {
            "normalized_shape": 4,
            "eps": 1e-5,
            "elementwise_affine": False,
            "bias": False,
        },
        "RMSNorm": {"normalized_shape": 4, "eps": None, "elementwise_affine": True},
        "CausalSelfAttention": {"dim": 4, "n_head": 2, "block_size": 3, "bias": True},
        "Block": {"n_embd": 4, "n_head": 2, "block_size": 3, "bias": True, "norm": "layer"},
        "GPT": {
            "vocab_size": 5,
            "block_size": 3,
            "n_embd": 4,
            "n_head": 2,
            "n_layer": 2,
            "bias": False,
            "norm": "rms",
        },
    }


@pytest.mark.parametrize("name", list(_configs()))
def test_state_dict_names_and_shapes_are_the_twins(torch, name):
    module = MODULE_TYPES[name](**_configs()[name])
    assert module.config() == _configs()[name]
    twin_state = to_torch(module).state_dict()
    ours = {key: _shape(value) for key, value in module.state_dict().items()}
    assert ours == {key.partition(".")[2]: tuple(t.shape) for key, t in twin_state.items()}
    assert MODULE_TYPES[name].state_shapes(**_configs()[name]) == ours


def _shape(value):
    return (len(value), *_shape(value[0])) if isinstance(value, list) else ()


@pytest.mark.parametrize("name", list(_configs()))
def test_save_and_load_give_back_the_same_module(tmp_path, name):
    module = MODULE_TYPES[name](**_configs()[name])
    save(module, tmp_path / "m.json")
    loaded = load(tmp_path / "m.json")
    assert type(loaded) is type(module)
    assert loaded.config() == module.config()
    assert loaded.state_dict() == module.state_dict()


def test_a_gpt_file_with_a_weight_of_the_wrong_shape_is_refused_and_says_where(tmp_path):
    model = GPT(5, block_size=3, n_embd=4, n_head=2, seed=0)
    save(model, tmp_path / "m.json")
    document = json.loads((tmp_path / "m.json").read_text())
    document["state"]["blocks.0.attn.in_proj_weight"].pop()
    (tmp_path / "m.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.in_proj_weight: expected a list of 12"):
        load(tmp_path / "m.json")


def test_a_gpt_state_dict_that_does_not_fit_leaves_the_model_as_it_was():
    model = GPT(5, block_size=3, n_embd=4, n_head=2, seed=0)
    before = model.state_dict()
    state = GPT(5, block_size=3, n_embd=4, n_head=2, seed=1).state_dict()
    state["lm_head.weight"][2][1] = math.nan
    with pytest.raises(ValueError, match=r"lm_head\.weight\[2\]\[1\]: expected a finite number"):
        model.load_state_dict(state)
    assert model.state_dict() == before


# -- labels for drawing -------------------------------------------------------------------------


def test_parameters_and_intermediate_nodes_are_labelled_by_where_they_live():
    model = GPT(5, block_size=3, n_embd=4, n_head=2, seed=0)
    labels = {p.label for p in model.parameters()}
    assert {"wte.weight0_0", "block1.attn.in_proj_weight11_3", "ln_f.weight3"} <= labels
    logits = model([0, 1])
    names = {node.label for node in _graph(logits[1][0])}
    assert {"block1.attn.head1.a1_0", "block1.attn.q1_3", "lm_head.y0", "ln_f.out2"} <= names


def _graph(root):
    from autograd_core import topological_order

    return topological_order(root)


def test_a_gpt_drawn_at_the_layers_level_is_a_chain_of_its_modules():
    from nn.losses import cross_entropy

    model = GPT(7, block_size=3, n_embd=4, n_head=2, seed=0)
    loss = cross_entropy(model([0, 5, 3]), [5, 3, 0])
    loss.backward()
    source = draw_dot(loss, level="layers").source
    for module in ("wte", "wpe", "embed", "block1", "ln_f", "lm_head"):
        assert f"<b>{module}</b>" in source, module
    # The constants of the formulas are named, not taken for the model's inputs.
    assert "inputs" not in source


def test_one_heads_graph_draws_grouped_by_module():
    attention = CausalSelfAttention(2, 1, block_size=2, bias=False, seed=0)
    out = attention([[0.5, -1.0], [1.0, 2.0]])[1][0]
    out.backward()
    source = draw_dot(out).source
    assert "head0" in source and "out_proj" in source


# -- errors -------------------------------------------------------------------------------------


def test_take_refuses_an_id_out_of_range_or_not_an_int():
    # IndexError out of range, as autograd_core.take and PyTorch's embedding raise
    table = Embedding(4, 2, seed=0).weight
    assert take(table, 3) is table[3]
    with pytest.raises(IndexError, match="token id 4 is out of range: expected 0..3"):
        take(table, 4)
    with pytest.raises(IndexError, match="token id -1 is out of range"):
        take(table, -1)
    with pytest.raises(TypeError, match="reads token ids \\(ints\\), got float"):
        take(table, 1.0)
    with pytest.raises(TypeError, match="got bool"):
        take(table, True)


def test_modules_refuse_bad_sizes_with_the_name_of_the_problem():
    with pytest.raises(ValueError, match="dim to be a multiple of n_head, got dim=6 and n_head=4"):
        CausalSelfAttention(6, 4, block_size=3)
    with pytest.raises(ValueError, match="unknown norm 'batch': expected one of rms, layer"):
        GPT(5, norm="batch")
    with pytest.raises(ValueError, match="LayerNorm expected eps > 0, got 0"):
        LayerNorm(3, eps=0)
    with pytest.raises(ValueError, match="Linear expected bias to be True or False, got 1"):
        Linear(2, 2, bias=1)


def test_more_positions_than_the_block_size_are_refused():
    model = GPT(5, block_size=3, n_embd=4, n_head=2, seed=0)
    with pytest.raises(ValueError, match="GPT got 4 token ids, more than its block_size 3"):
        model([0, 1, 2, 3])
    with pytest.raises(ValueError, match="CausalSelfAttention got 4 positions, more than"):
        model.blocks[0].attn([[0.0] * 4] * 4)


def test_a_norm_refuses_a_vector_of_the_wrong_size():
    with pytest.raises(ValueError, match="RMSNorm expected 4 inputs, got 3"):
        RMSNorm(4)([1.0, 2.0, 3.0])


# -- sampling ------------------------------------------------------------------------------------


def test_generate_is_reproducible_with_a_seed_and_gives_names_of_the_vocabulary():
    model = GPT(27, seed=0)
    first = generate(model, 5, seed=1)
    assert first == generate(model, 5, seed=1)
    assert first != generate(model, 5, seed=2)
    assert len(first) == 5
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in first)
    assert all(len(name) <= model.block_size for name in first)


def test_top_k_1_is_the_likeliest_token_whatever_the_seed():
    model = GPT(27, seed=0)
    greedy = generate(model, 1, top_k=1, seed=1)
    assert greedy == generate(model, 1, top_k=1, seed=2)
    ids = [0]
    for _ in range(len(greedy[0])):
        logits = _numbers(model(ids)[-1])
        ids.append(max(range(27), key=logits.__getitem__))
    assert names_tokenizer().decode(ids[1:]) == greedy[0]


def test_generate_refuses_a_tokenizer_of_another_size_and_a_bad_temperature():
    with pytest.raises(ValueError, match="tokenizer has 4 tokens but the model's vocab_size is 27"):
        generate(GPT(27, seed=0), 1, tokenizer=CharTokenizer("abc"))
    with pytest.raises(ValueError, match="temperature > 0, got 0"):
        generate(GPT(27, seed=0), 1, temperature=0)
    with pytest.raises(ValueError, match="top_k to be an int >= 1 or None, got 0"):
        generate(GPT(27, seed=0), 1, top_k=0)
