"""Loss functions: a batch of predictions and labels in, the batch mean out, as ONE Value.

Class labels are class indices everywhere: 0 or 1 for the binary losses (hinge maps them to
-1/+1 itself), 0..k-1 for `cross_entropy` over k logits. A label the model cannot output is
refused with a `ValueError` that names it.

Each loss is a handful of nodes per sample plus one `dot` or `vsum` for the whole batch, and
none branches on the data: the graph has the same shape for every input, so `jit` can trace
a loss once and replay it on any sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from autograd_core import Value, dot, ops, vsum

from ._checks import is_real

Number = int | float
Prediction = Value | float


def mse(preds: Sequence[Any], targets: Sequence[Any]) -> Value:
    """Mean squared error: (1/N) sum_i (p_i - t_i)^2 over all N outputs of the batch.

    A prediction is one Value per sample, or a list of Values for a model with several
    outputs (then its target is a list of the same length). d/dp_i = 2 (p_i - t_i) / N.
    As `torch.nn.functional.mse_loss` with its default mean.
    """
    _check_batch("mse", preds, targets, "predictions", "targets")
    differences = []
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        if _is_list(p):
            if not _is_list(t) or len(t) != len(p):
                raise ValueError(
                    f"mse: prediction {i} has {len(p)} outputs, so its target must be a list "
                    f"of {len(p)} numbers, got {t!r}"
                )
            differences.extend(pj - tj for pj, tj in zip(p, t, strict=True))
        else:
            differences.append(p - t)
    # dot(d, d) = sum_i d_i^2 in one node.
    return dot(differences, differences) / len(differences)


def hinge(scores: Sequence[Prediction], labels: Sequence[Number]) -> Value:
    """Hinge loss: (1/n) sum_i max(0, 1 - s_i * score_i), with s_i = +1 for label 1, -1 for 0.

    Zero for a sample classified right with a margin of at least 1. As the torch expression
    `torch.clamp(1 - s * score, min=0).mean()`. The class predicted is 1 where score > 0.
    """
    scores = _one_per_sample("hinge", scores, labels)
    classes = _class_indices("hinge", labels, [2] * len(labels))
    margins = [
        (1.0 - score if c == 1 else 1.0 + score).relu()
        for score, c in zip(scores, classes, strict=True)
    ]
    return vsum(margins) / len(margins)


def binary_cross_entropy(logits: Sequence[Prediction], labels: Sequence[Number]) -> Value:
    """Binary cross-entropy from logits: (1/n) sum_i -log p(y_i), with p(1) = sigmoid(z_i).

    For one logit z and label y the loss is softplus(z) - y z, written in the stable form

        |z| / 2 + (1/2 - y) z - log sigmoid(|z|)

    (softplus(z) = max(z, 0) + log(1 + e^-|z|), and max(z, 0) = (z + |z|) / 2). sigmoid(|z|)
    is in [1/2, 1], so nothing overflows or takes the log of 0, even at z = +-1000. Writing max
    with |z| instead of relu also gives the exact gradient sigmoid(z) - y at z = 0, where relu
    and abs have kinks. As `torch.nn.functional.binary_cross_entropy_with_logits`.
    """
    zs = [_as_value(z) for z in _one_per_sample("binary_cross_entropy", logits, labels)]
    classes = _class_indices("binary_cross_entropy", labels, [2] * len(labels))
    n = len(zs)
    magnitudes = [abs(z) for z in zs]
    log_sigmoids = [a.sigmoid().log() for a in magnitudes]
    # The whole batch's sum of the three terms, weighted, is one dot node.
    weights = [0.5] * n + [0.5 - c for c in classes] + [-1.0] * n
    return dot([*magnitudes, *zs, *log_sigmoids], weights) / n


def cross_entropy(
    logits_per_sample: Sequence[Sequence[Any]],
    labels: Sequence[Any],
    ignore_index: int | None = None,
) -> Value:
    """Softmax cross-entropy: (1/n) sum_i [logsumexp(z_i) - z_i[y_i]], z_i the logits of sample i.

    logsumexp(z) = m + log sum_j e^(z_j - m) for any m; taking m = max_j z_j keeps every
    exponent <= 0, so nothing overflows at logits of +-1000 (or of -1e308 and 1e308, in either
    order). It is one `logsumexp` node of the op table per sample, whose partials are the
    softmax, so d/dz_ij = softmax(z_i)_j - [j == y_i], over n.
    As `torch.nn.functional.cross_entropy` with class-index targets.

    A sequence model gives, per sample, one row of logits per position, and its label is a
    list of targets, one per position: every (row, target) pair is then one term. Targets equal
    to `ignore_index` (a padded position) are left out and n counts the others, over the whole
    batch: PyTorch's `cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=...)`.
    """
    _check_batch("cross_entropy", logits_per_sample, labels, "samples of logits", "labels")
    rows, targets = [], []
    for i, (logits, label) in enumerate(zip(logits_per_sample, labels, strict=True)):
        if not _is_list(logits):
            raise ValueError(
                f"cross_entropy expected a list of logits (one per class) for sample {i}, "
                f"got {type(logits).__name__}"
            )
        if not _is_list(label):
            rows.append([_as_value(z) for z in logits])
            targets.append(label)
            continue
        if len(label) != len(logits):
            raise ValueError(
                f"cross_entropy: sample {i} has {len(logits)} positions of logits but "
                f"{len(label)} targets"
            )
        for position, target in zip(logits, label, strict=True):
            if ignore_index is None or target != ignore_index:
                rows.append([_as_value(z) for z in position])
                targets.append(target)
    if not rows:
        raise ValueError(f"cross_entropy: every target of the batch is ignore_index={ignore_index}")
    classes = _class_indices("cross_entropy", targets, [len(row) for row in rows])
    n = len(rows)
    log_sum_exps = [_log_sum_exp(row) for row in rows]
    picked = [row[c] for row, c in zip(rows, classes, strict=True)]
    return dot([*log_sum_exps, *picked], [1.0] * n + [-1.0] * n) / n


def l2(params: Iterable[Value], alpha: float) -> Value:
    """L2 penalty: alpha * sum_p p^2, a sum over the parameters (not a mean).

    d/dp = 2 alpha p, so it acts like PyTorch's `weight_decay = 2 * alpha`. micrograd's moons
    demo adds it with alpha = 1e-4.
    """
    if not is_real(alpha):
        raise ValueError(f"l2 expected alpha to be a number, got {type(alpha).__name__}")
    if not (math.isfinite(alpha) and alpha >= 0.0):
        raise ValueError(f"l2 expected alpha to be a finite number >= 0, got {alpha!r}")
    params = list(params)
    return alpha * dot(params, params)


def _log_sum_exp(logits: list[Value]) -> Value:
    return ops.LOGSUMEXP(*logits)


def _as_value(x: Prediction) -> Value:
    return x if isinstance(x, Value) else Value(x)


def _is_list(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _check_batch(
    loss: str, preds: Sequence[Any], labels: Sequence[Any], what: str, of: str
) -> None:
    if len(preds) != len(labels):
        raise ValueError(f"{loss} got {len(preds)} {what} and {len(labels)} {of}")
    if not preds:
        raise ValueError(f"{loss} needs at least one sample, got an empty batch")


def _one_per_sample(
    loss: str, scores: Sequence[Prediction], labels: Sequence[Number]
) -> Sequence[Prediction]:
    _check_batch(loss, scores, labels, "scores", "labels")
    for i, score in enumerate(scores):
        if _is_list(score):
            raise ValueError(
                f"{loss} expected one score per sample (a model with 1 output), "
                f"got a list of {len(score)} for sample {i}"
            )
    return scores


def _class_indices(loss: str, labels: Sequence[Number], n_classes: Sequence[int]) -> list[int]:
    """The labels as ints, each checked to be a class 0..k-1 the model can output."""
    classes = []
    for i, (label, k) in enumerate(zip(labels, n_classes, strict=True)):
        real = is_real(label)
        if not (real and math.isfinite(label) and float(label).is_integer() and 0 <= label < k):
            expected = "0 or 1" if k == 2 else f"a class index 0..{k - 1}"
            raise ValueError(
                f"{loss}: label {label!r} of sample {i} is not a class this model can output: "
                f"expected {expected}"
            )
        classes.append(int(label))
    return classes
