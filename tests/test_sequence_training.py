"""fit on sequences: per-position targets with -1 ignored, as PyTorch's cross_entropy with
ignore_index; perplexity and next-token accuracy; the jit fallback; errors; a GPT that learns."""

import math
import random
import warnings

import pytest

from nn import GPT, fit, optim, to_torch
from nn.data import IGNORE, names_dataset
from nn.train import _BatchedSequenceStep

ALPHABET = 4  # the toy language's tokens: 0 is the boundary, then 1, 2, 3


def _counting(n, length, seed):
    """A toy language: after the boundary comes a token k of 1..3 drawn at random, then k + 1,
    k + 2, ... (mod 3), k + 1 tokens in all, then the boundary again: each token but the first
    follows from what came before. Padded to `length` with IGNORE targets."""
    rng = random.Random(seed)
    X, Y = [], []
    for _ in range(n):
        start = rng.randint(1, 3)
        size = min(start + 2, length)
        tokens = [0] + [1 + (start - 1 + i) % 3 for i in range(size - 1)]
        targets = tokens[1:] + [0]
        X.append(tokens + [0] * (length - size))
        Y.append(targets + [IGNORE] * (length - size))
    return X, Y


def _small_gpt(seed=0, **options):
    config = {"block_size": 6, "n_embd": 8, "n_head": 2, "n_layer": 1} | options
    return GPT(ALPHABET, **config, seed=seed)


def test_the_loss_is_torchs_cross_entropy_with_ignore_index_and_one_step_matches_sgd(torch):
    X, Y = _counting(5, 6, seed=0)
    model = _small_gpt()
    net = to_torch(model)
    history = fit(
        model, X, Y, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.5),
        epochs=1, progress=False,
    )  # fmt: skip

    logits = net(torch.tensor(X))
    expected = torch.nn.functional.cross_entropy(
        logits.reshape(-1, ALPHABET), torch.tensor(Y).reshape(-1), ignore_index=IGNORE
    )
    assert history.loss[0] == pytest.approx(expected.item(), rel=1e-12)
    assert history.perplexity[0] == pytest.approx(math.exp(expected.item()), rel=1e-12)
    expected.backward()
    torch.optim.SGD(net.parameters(), lr=0.5).step()
    theirs = {key.partition(".")[2]: t.tolist() for key, t in net.state_dict().items()}
    ours = model.state_dict()
    for key, value in ours.items():
        assert _flat(value) == pytest.approx(_flat(theirs[key]), rel=1e-10, abs=1e-13), key


def _flat(tree):
    return [x for child in tree for x in _flat(child)] if isinstance(tree, list) else [tree]


# The padded run reads no row of wpe past the longest sample: rightly warned, not the point here.
@pytest.mark.filterwarnings("ignore:.*do not affect the loss")
def test_padding_is_not_computed_yet_every_number_is_that_of_the_padded_run():
    X, Y = _counting(12, 6, seed=1)
    runs = []
    for causal in (True, False):
        model = _small_gpt(seed=2)
        model.causal = causal  # False: every padded position is computed too
        history = fit(
            model, X, Y, loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=0.01),
            epochs=2, batch_size=4, seed=0, progress=False, validation_data=(X[:3], Y[:3]),
        )  # fmt: skip
        runs.append((history, model.state_dict()))
    (fast, fast_state), (full, full_state) = runs
    assert fast.loss == pytest.approx(full.loss, rel=1e-12)
    assert fast.val_loss == pytest.approx(full.val_loss, rel=1e-12)
    assert fast.accuracy == full.accuracy and fast.val_accuracy == full.val_accuracy
    for key in full_state:
        assert _flat(fast_state[key]) == pytest.approx(_flat(full_state[key]), rel=1e-9), key


def test_accuracy_counts_only_the_positions_with_a_target():
    X, Y = _counting(30, 6, seed=3)
    model = _small_gpt(seed=4)
    history = fit(
        model, X, Y, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.0),
        epochs=1, progress=False,
    )  # fmt: skip
    right = counted = 0
    for ids, targets in zip(X, Y, strict=True):
        for row, target in zip(model(ids), targets, strict=True):
            if target != IGNORE:
                scores = [z.data for z in row]
                right += scores.index(max(scores)) == target
                counted += 1
    assert history.accuracy[0] == pytest.approx(right / counted, rel=1e-15)


def test_a_gpt_learns_the_toy_language_on_held_out_sequences():
    X, Y = _counting(30, 6, seed=5)
    X_val, Y_val = _counting(20, 6, seed=6)
    model = _small_gpt(seed=7)
    history = fit(
        model, X, Y, loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=12, batch_size=6, seed=0, progress=False, validation_data=(X_val, Y_val),
    )  # fmt: skip
    # Every token after the first follows from the ones before: all predicted right.
    for ids, targets in zip(X_val, Y_val, strict=True):
        for t, (row, target) in enumerate(zip(model(ids), targets, strict=True)):
            if t > 0 and target != IGNORE:
                scores = [z.data for z in row]
                assert scores.index(max(scores)) == target
    # The first token is a free choice of 3: the best loss is log 3 on those positions, 0 on
    # the others, averaged over the counted positions.
    counted = sum(1 for y in Y_val for target in y if target != IGNORE)
    best = math.log(3) * len(Y_val) / counted
    assert history.val_loss[-1] < best + 0.1
    assert history.val_perplexity[-1] == pytest.approx(math.exp(history.val_loss[-1]))


@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_jit_trains_a_gpt_batched_with_the_eager_numbers(batch_size):
    X, Y = _counting(7, 6, seed=8)
    X_val, Y_val = _counting(3, 6, seed=9)
    runs = []
    for jit in (False, True):
        model = _small_gpt(seed=9)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback, no warning
            history = fit(
                model, X, Y, loss="cross_entropy", jit=jit, epochs=2, batch_size=batch_size,
                seed=0, optimizer=optim.Adam(model.parameters(), lr=0.01), progress=False,
                validation_data=(X_val, Y_val),
            )  # fmt: skip
        runs.append((history, [p.data for p in model.parameters()]))
    (eager, eager_weights), (batched, batched_weights) = runs
    for name in ("loss", "val_loss", "perplexity", "accuracy", "val_accuracy"):
        assert getattr(batched, name) == pytest.approx(getattr(eager, name), rel=1e-12, abs=1e-12)
    assert batched_weights == pytest.approx(eager_weights, rel=1e-10, abs=1e-12)


def test_jit_on_a_gpt_runs_its_embeddings_as_one_gather():
    model = _small_gpt(seed=1)
    X, Y = _counting(4, 6, seed=2)
    step = _BatchedSequenceStep(model, model.parameters(), "cross_entropy", 0, None)
    source = step._step_for(len(X[0])).source
    assert "_row_indices(X, " in source  # every position's token row in one gather
    assert "np.take_along_axis(" in source  # every position's target logit at once


def _sequence_step(lengths, seed=3):
    model = _small_gpt(seed=seed)
    model.train()
    params = model.parameters()
    optimizer = optim.SGD(params, lr=0.1)
    return _BatchedSequenceStep(model, params, "cross_entropy", 0, optimizer, lengths=lengths)


def test_jit_cuts_each_batch_of_a_causal_model_after_its_longest_sample():
    X, Y = _counting(8, 6, seed=4)
    step = _sequence_step("longest")
    data = step.data(X, Y)
    counted = [sum(t != IGNORE for t in targets) for targets in Y]
    short = [i for i, n in enumerate(counted) if n == min(counted)]
    _, outputs = step.run(data, short, 0.0, "step 1")
    _, outputs = step.run(data, list(range(len(X))), 0.0, "step 2")
    assert sorted(length for length, _ in step._program_for) == sorted({min(counted), max(counted)})
    assert outputs.shape == (len(X), 6, ALPHABET)  # the cut positions reported, as zeros
    assert not outputs[:, max(counted) :].any()


def test_the_cut_batch_gives_the_padded_batchs_loss_gradients_and_logits():
    X, Y = _counting(9, 6, seed=5)
    batch = [0, 2, 3, 5, 8]
    padded, cut = _sequence_step("padding"), _sequence_step("longest")
    loss, outputs = padded.run(padded.data(X, Y), batch, 0.0, "step 1")
    cut_loss, cut_outputs = cut.run(cut.data(X, Y), batch, 0.0, "step 1")
    assert next(iter(padded._program_for))[0] == 6 > next(iter(cut._program_for))[0]
    assert cut_loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    assert cut.grad == pytest.approx(padded.grad, rel=1e-10, abs=1e-14)
    counted = [[t != IGNORE for t in Y[i]] for i in batch]
    for row, cut_row, mask in zip(outputs, cut_outputs, counted, strict=True):
        for logits, cut_logits, is_counted in zip(row, cut_row, mask, strict=True):
            if is_counted:
                assert cut_logits == pytest.approx(logits, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize(("batch_size", "cut"), [(4, False), (16, True), (None, True)])
def test_fit_cuts_a_causal_models_batches_from_16_samples(monkeypatch, batch_size, cut):
    import nn.train

    traced, trace = [], nn.train.ir.trace
    monkeypatch.setattr(
        nn.train.ir,
        "trace",
        lambda f, n, *rest, **options: traced.append(n) or trace(f, n, *rest, **options),
    )
    X, Y = _counting(20, 6, seed=6)  # every name ends before the block of 6
    model = _small_gpt(seed=6)
    fit(model, X, Y, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=1, batch_size=batch_size, seed=0, progress=False)  # fmt: skip
    # a program reads ids, targets and weights: 3 numbers per position it computes
    assert (max(traced) < 3 * 6) == cut


def test_a_sequence_step_refuses_a_way_of_running_lengths_it_does_not_know():
    with pytest.raises(ValueError, match="lengths must be 'padding' or 'longest'.*'bucket'"):
        _sequence_step("bucket")


def test_names_train_a_microgpt_below_the_uniform_loss():
    X, Y = names_dataset(16)
    model = GPT(27, seed=0)
    history = fit(
        model, X[:48], Y[:48], loss="cross_entropy", epochs=2, batch_size=16, seed=0,
        optimizer=optim.Adam(model.parameters(), lr=0.01, betas=(0.85, 0.99)), progress=False,
    )  # fmt: skip
    assert history.loss[-1] < math.log(27) - 0.3  # the uniform guess is log 27 = 3.30


# -- errors ---------------------------------------------------------------------------------------


def _fit(model, X, Y, **options):
    arguments = {"loss": "cross_entropy", "epochs": 1, "progress": False} | options
    return fit(model, X, Y, optimizer=optim.SGD(model.parameters(), lr=0.1), **arguments)


def test_a_target_out_of_range_is_refused_naming_sample_and_position():
    X, Y = _counting(3, 6, seed=0)
    Y[1][2] = 7
    with pytest.raises(ValueError, match="target 7 of sample 1, position 2 is not a class"):
        _fit(_small_gpt(), X, Y)


def test_targets_of_another_length_than_the_sample_are_refused():
    X, Y = _counting(3, 6, seed=0)
    Y[2] = Y[2][:4]
    with pytest.raises(ValueError, match="sample 2 has 6 positions but 4 targets"):
        _fit(_small_gpt(), X, Y)


def test_a_class_label_for_a_sequence_model_is_refused():
    X, _ = _counting(3, 6, seed=0)
    with pytest.raises(ValueError, match="target of sample 0 must be a list of one class per"):
        _fit(_small_gpt(), X, [1, 2, 3])


def test_a_loss_other_than_cross_entropy_is_refused_for_a_sequence_model():
    X, Y = _counting(3, 6, seed=0)
    with pytest.raises(ValueError, match="loss 'mse' does not fit a model that predicts per"):
        _fit(_small_gpt(), X, Y, loss="mse")


def test_bad_validation_targets_are_refused_before_training():
    X, Y = _counting(3, 6, seed=0)
    model = _small_gpt()
    before = model.state_dict()
    bad = [row[:] for row in Y]
    bad[0][0] = -2
    with pytest.raises(ValueError, match="fit validation_data: target -2 of sample 0, position 0"):
        _fit(model, X, Y, validation_data=(X, bad))
    assert model.state_dict() == before
