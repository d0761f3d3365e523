"""Modules for sequences and language: embeddings, normalisation, causal self-attention, a GPT.

A language model reads a sample as a list of token ids, one per position, and gives for each
position the logits of the token that comes next. Everything here is built from the engine's
scalar nodes, with its n-ary ones where a sum has many terms: a weighted sum is one `dot`, a
softmax's normaliser one `logsumexp`, so attention over T positions makes O(T^2) nodes, not
O(T^2 * head_dim).

    Embedding       a token id selects a row of a table: x = E[id]
    Linear          y = W x (+ b), torch.nn.Linear (its bias optional)
    LayerNorm       y = (x - mean(x)) / sqrt(var(x) + eps) * w + b
    RMSNorm         y = x / sqrt(mean(x^2) + eps) * w
    CausalSelfAttention   position t attends to positions 1..t, in n_head heads
    Block           x + attn(norm(x)), then x + mlp(norm(x)) (pre-norm, as GPT-2)
    GPT             token and position embeddings, blocks, a final norm and a head

Each has PyTorch's `state_dict` names and shapes (attention is `torch.nn.MultiheadAttention`'s:
`in_proj_weight`, `out_proj.weight`; a GPT names its parts as nanoGPT does), saves and loads,
and exports with `nn.to_torch` to modules that compute the same numbers.

`generate(model, n)` samples new sequences from a trained model, one token at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import autograd_core
from autograd_core import Value, dot, no_grad, ops, vsum

from ._checks import is_integer, is_real
from .data import CharTokenizer, Seed, as_rng, names_tokenizer
from .modules import Input, Module, Shape, _check_size, _values_of, register

Vector = list[Value]


def take(table: list[list[Value]], index: int) -> Vector:
    """Row `index` of `table`: the integer gather that an embedding is.

    The row's Values themselves, not copies: the output IS the row, so whatever gradient
    reaches the output lands on that row (summed over every position that reads it), and
    every other row gets none. An index that is not an int in 0..len(table) - 1 raises an
    error naming it. Traced (the batched back-end, where a sample's token id is a Value), it is
    `autograd_core.take`: one gather of the table's rows for a whole batch.
    """
    if isinstance(index, Value):  # a token id that is an input of a traced function
        return autograd_core.take(table, index)
    if not is_integer(index):
        raise TypeError(f"an embedding reads token ids (ints), got {type(index).__name__}")
    if not 0 <= index < len(table):
        raise IndexError(f"token id {index} is out of range: expected 0..{len(table) - 1}")
    return table[index]


def _normal_matrix(rows: int, columns: int, std: float, rng: Any) -> list[list[Value]]:
    return [[Value(rng.gauss(0.0, std)) for _ in range(columns)] for _ in range(rows)]


def _uniform(size: int, bound: float, rng: Any) -> list[Value]:
    return [Value(rng.uniform(-bound, bound)) for _ in range(size)]


@register
class Embedding(Module):
    """A table of `num_embeddings` rows of `embedding_dim` numbers; token id i reads row i.

    `embedding(ids)` takes a list of token ids and returns one row (a list of Values) per id;
    `embedding(i)` with one id returns its row. Ids must be ints in 0..num_embeddings - 1.
    As `torch.nn.Embedding`: `weight` is num_embeddings x embedding_dim, initialised N(0, 1).
    The rows come out through `take`, the one place an integer picks a parameter.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, seed: Seed = None) -> None:
        _check_size("Embedding", "num_embeddings", num_embeddings)
        _check_size("Embedding", "embedding_dim", embedding_dim)
        self.weight = _normal_matrix(num_embeddings, embedding_dim, 1.0, as_rng(seed))
        self.set_labels()

    @property
    def num_embeddings(self) -> int:
        return len(self.weight)

    @property
    def embedding_dim(self) -> int:
        return len(self.weight[0])

    def config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}

    @classmethod
    def state_shapes(cls, num_embeddings: int, embedding_dim: int) -> dict[str, Shape]:
        _check_size("Embedding", "num_embeddings", num_embeddings)
        _check_size("Embedding", "embedding_dim", embedding_dim)
        return {"weight": (num_embeddings, embedding_dim)}

    def forward(self, ids: int | Sequence[int]) -> Vector | list[Vector]:
        if is_integer(ids):
            return take(self.weight, ids)  # type: ignore[arg-type]
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(
                f"Embedding expected a token id or a list of them, got {type(ids).__name__}"
            )
        return [take(self.weight, i) for i in ids]


@register
class Linear(Module):
    """y = W x + b, as `torch.nn.Linear`: `weight` is out_features x in_features, and the
    bias is optional (`bias=False`: y = W x). Each output is ONE `dot` node, the bias paired
    with a constant 1 as in a neuron. Initialisation as PyTorch's: U(-1/sqrt(in), 1/sqrt(in)).
    Unlike a `Layer`, no activation and no neurons: one weight matrix, as in a transformer.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, seed: Seed = None
    ) -> None:
        _check_linear(in_features, out_features, bias)
        rng = as_rng(seed)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = [_uniform(in_features, bound, rng) for _ in range(out_features)]
        if bias:
            self.bias = _uniform(out_features, bound, rng)
        self.set_labels()

    @property
    def in_features(self) -> int:
        return len(self.weight[0])

    @property
    def out_features(self) -> int:
        return len(self.weight)

    @property
    def has_bias(self) -> bool:
        return "bias" in vars(self)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.has_bias,
        }

    @classmethod
    def state_shapes(
        cls, in_features: int, out_features: int, bias: bool = True
    ) -> dict[str, Shape]:
        _check_linear(in_features, out_features, bias)
        shapes: dict[str, Shape] = {"weight": (out_features, in_features)}
        if bias:
            shapes["bias"] = (out_features,)
        return shapes

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._out_labels = [f"{prefix}y{i}" for i in range(self.out_features)]

    def forward(self, x: Sequence[Input]) -> Vector:
        inputs = _values_of(x, "Linear", self.in_features)
        if self.has_bias:
            inputs.append(Value(1.0, "1"))  # the constant the biases multiply
            rows = [[*row, b] for row, b in zip(self.weight, self.bias, strict=True)]
        else:
            rows = self.weight
        out = [dot(row, inputs) for row in rows]
        for y, label in zip(out, self._out_labels, strict=True):
            y.label = label
        return out


def _check_linear(in_features: Any, out_features: Any, bias: Any) -> None:
    _check_size("Linear", "in_features", in_features)
    _check_size("Linear", "out_features", out_features)
    _check_flag("Linear", "bias", bias)


def _check_flag(owner: str, name: str, flag: Any) -> None:
    if not isinstance(flag, bool):
        raise ValueError(f"{owner} expected {name} to be True or False, got {flag!r}")


class _Norm(Module):
    """What LayerNorm and RMSNorm share: the size, eps, the optional affine weight and bias,
    and the last step, y_j = x_j * s * w_j (+ b_j) for the normalising scale s."""

    def __init__(self, dim: int, eps: float, affine: bool, bias: bool) -> None:
        self._check(dim, eps, affine, bias)
        self._dim, self.eps, self._bias = dim, float(eps), bias
        if affine:
            self.weight = [Value(1.0) for _ in range(dim)]
            if bias:
                self.bias = [Value(0.0) for _ in range(dim)]
        self.set_labels()

    @classmethod
    def _check(cls, dim: Any, eps: Any, affine: Any, bias: Any) -> None:
        name = cls.__name__
        _check_size(name, "normalized_shape", dim)
        if not is_real(eps) or not 0.0 < eps < math.inf:
            raise ValueError(f"{name} expected eps > 0, got {eps!r}")
        _check_flag(name, "elementwise_affine", affine)
        _check_flag(name, "bias", bias)

    @classmethod
    def _shapes(cls, dim: int, eps: float, affine: bool, bias: bool) -> dict[str, Shape]:
        cls._check(dim, eps, affine, bias)
        names = ("weight", "bias") if bias else ("weight",)
        return {name: (dim,) for name in names} if affine else {}

    @property
    def normalized_shape(self) -> int:
        return self._dim

    @property
    def elementwise_affine(self) -> bool:
        return "weight" in vars(self)

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._prefix = prefix
        self._out_labels = [f"{prefix}out{j}" for j in range(self._dim)]

    def _scaled(self, xs: list[Value], scale: Value) -> Vector:
        if self.elementwise_affine:
            out = [x * (scale * w) for x, w in zip(xs, self.weight, strict=True)]
        else:
            out = [x * scale for x in xs]
        if "bias" in vars(self):
            out = [y + b for y, b in zip(out, self.bias, strict=True)]
        for y, label in zip(out, self._out_labels, strict=True):
            y.label = label
        return out


@register
class LayerNorm(_Norm):
    """Layer normalisation of one vector of `normalized_shape` numbers, as `torch.nn.LayerNorm`:

        mean = (1/n) sum_j x_j        var = (1/n) sum_j (x_j - mean)^2   (biased)
        y_j  = (x_j - mean) / sqrt(var + eps) * w_j + b_j

    Unlike batch norm, the statistics are the sample's own, so it behaves the same in train
    and eval mode and on a batch of one. `elementwise_affine=False` drops w and b, `bias=False`
    only b; w starts at 1 and b at 0. The gradient flows through mean and var too.
    """

    def __init__(
        self,
        normalized_shape: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(normalized_shape, eps, elementwise_affine, bias)

    def config(self) -> dict[str, Any]:
        return {
            "normalized_shape": self._dim,
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self._bias,
        }

    @classmethod
    def state_shapes(
        cls,
        normalized_shape: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> dict[str, Shape]:
        return cls._shapes(normalized_shape, eps, elementwise_affine, bias)

    def forward(self, x: Sequence[Input]) -> Vector:
        xs = _values_of(x, "LayerNorm", self._dim)
        n = len(xs)
        one_over_n = _constant(1.0 / n)
        mean = vsum(xs) * one_over_n
        centred = [xj - mean for xj in xs]
        variance = dot(centred, centred) * one_over_n
        return self._scaled(centred, (variance + _constant(self.eps)) ** -0.5)


@register
class RMSNorm(_Norm):
    """Root-mean-square normalisation of one vector, as `torch.nn.RMSNorm`:

        y_j = x_j / sqrt((1/n) sum_k x_k^2 + eps) * w_j

    LayerNorm without the centring and the bias: cheaper, and what microgpt and LLaMA use.
    `eps=None` is the machine epsilon of a float (2.2e-16), PyTorch's default for float64.
    `elementwise_affine=False` drops w, which starts at 1.
    """

    def __init__(
        self, normalized_shape: int, eps: float | None = None, elementwise_affine: bool = True
    ) -> None:
        self._eps_given = eps
        super().__init__(normalized_shape, _rms_eps(eps), elementwise_affine, False)

    def config(self) -> dict[str, Any]:
        return {
            "normalized_shape": self._dim,
            "eps": self._eps_given,
            "elementwise_affine": self.elementwise_affine,
        }

    @classmethod
    def state_shapes(
        cls, normalized_shape: int, eps: float | None = None, elementwise_affine: bool = True
    ) -> dict[str, Shape]:
        return cls._shapes(normalized_shape, _rms_eps(eps), elementwise_affine, False)

    def forward(self, x: Sequence[Input]) -> Vector:
        xs = _values_of(x, "RMSNorm", self._dim)
        mean_square = dot(xs, xs) * _constant(1.0 / len(xs))
        return self._scaled(xs, (mean_square + _constant(self.eps)) ** -0.5)


def _constant(number: float) -> Value:
    """A number of a formula (eps, 1/n, 1/sqrt(d)) as a leaf labelled with itself: a drawing
    shows it as that number, not as an input or as one of the module's parameters."""
    return Value(number, f"{number:g}")


def _rms_eps(eps: float | None) -> float:
    return math.ulp(1.0) if eps is None else eps


NORMS: dict[str, type[LayerNorm] | type[RMSNorm]] = {"rms": RMSNorm, "layer": LayerNorm}
"""The normalisation a GPT block uses, by name."""


@register
class CausalSelfAttention(Module):
    """Multi-head causal self-attention over the positions of one sample.

    For the inputs x_1 ... x_T (T <= block_size, each of `dim` numbers), with
    [q; k; v] = W_in x + b_in split into `n_head` heads of d = dim / n_head numbers:

        a_ts = softmax_s(q_t . k_s / sqrt(d))   over s = 1..t only (causal: no peeking ahead)
        o_t  = sum_s a_ts v_s                   per head, the heads side by side
        y_t  = W_out o_t + b_out

    The softmax is exp(z_s - logsumexp(z)), its normaliser one `logsumexp` node; each score
    and each output number one `dot` node. `attention(x)` gives the weights a_ts, for a heat map.

    As `torch.nn.MultiheadAttention(dim, n_head, bias=bias, batch_first=True)` called with a
    causal mask: the same `state_dict` (`in_proj_weight` 3*dim x dim, `in_proj_bias`,
    `out_proj.weight`, `out_proj.bias`) and the same initialisation (Xavier-uniform in_proj,
    zero biases).
    """

    def __init__(
        self, dim: int, n_head: int, block_size: int, bias: bool = True, seed: Seed = None
    ) -> None:
        _check_attention(dim, n_head, block_size, bias)
        rng = as_rng(seed)
        bound = math.sqrt(6.0 / (dim + 3 * dim))  # Xavier: fan_in dim, fan_out 3 dim
        self.in_proj_weight = [_uniform(dim, bound, rng) for _ in range(3 * dim)]
        if bias:
            self.in_proj_bias = [Value(0.0) for _ in range(3 * dim)]
        self.out_proj = Linear(dim, dim, bias, seed=rng)
        if bias:
            for b in self.out_proj.bias:
                b.data = 0.0
        self.n_head = n_head
        self.block_size = block_size
        self.set_labels()

    @property
    def dim(self) -> int:
        return len(self.in_proj_weight[0])

    @property
    def has_bias(self) -> bool:
        return "in_proj_bias" in vars(self)

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "n_head": self.n_head,
            "block_size": self.block_size,
            "bias": self.has_bias,
        }

    @classmethod
    def state_shapes(
        cls, dim: int, n_head: int, block_size: int, bias: bool = True
    ) -> dict[str, Shape]:
        _check_attention(dim, n_head, block_size, bias)
        shapes: dict[str, Shape] = {"in_proj_weight": (3 * dim, dim)}
        if bias:
            shapes["in_proj_bias"] = (3 * dim,)
        out = Linear.state_shapes(dim, dim, bias)
        return shapes | {f"out_proj.{key}": shape for key, shape in out.items()}

    def set_labels(self, prefix: str = "") -> None:
        super().set_labels(prefix)
        self._prefix = prefix

    def forward(self, xs: Sequence[Sequence[Input]]) -> list[Vector]:
        """y_1 ... y_T for the inputs x_1 ... x_T, each a list of `dim` Values."""
        outputs, _ = self._attend(xs)
        return [self.out_proj(o) for o in outputs]

    def attention(self, xs: Sequence[Sequence[Input]]) -> list[list[list[float]]]:
        """The weights a_ts of each head as numbers: [head][t][s], 0 where s > t."""
        with no_grad():
            _, weights = self._attend(xs)
        size = len(weights[0])
        return [
            [[a.data for a in row] + [0.0] * (size - len(row)) for row in head] for head in weights
        ]

    def _attend(self, xs: Sequence[Sequence[Input]]) -> tuple[list[Vector], list[list[Vector]]]:
        """The heads' outputs o_t, side by side, and the weights a_ts of each head."""
        if isinstance(xs, (str, bytes)) or not isinstance(xs, Sequence) or not xs:
            raise ValueError(
                f"CausalSelfAttention expected a non-empty list of positions, got {xs!r}"
            )
        if len(xs) > self.block_size:
            raise ValueError(
                f"CausalSelfAttention got {len(xs)} positions, more than its block_size "
                f"{self.block_size}"
            )
        dim, d, p = self.dim, self.dim // self.n_head, self._prefix
        one = Value(1.0, "1")
        rows = self.in_proj_weight
        if self.has_bias:
            rows = [[*row, b] for row, b in zip(rows, self.in_proj_bias, strict=True)]
        scale = _constant(1.0 / math.sqrt(d))
        queries, keys, values = [], [], []
        for t, x in enumerate(xs):
            inputs = _values_of(x, "CausalSelfAttention", dim)
            if self.has_bias:
                inputs.append(one)
            qkv = [dot(row, inputs) for row in rows]
            # 1/sqrt(d) on the query once, not on each of its t scores.
            queries.append([q * scale for q in qkv[:dim]])
            keys.append(qkv[dim : 2 * dim])
            values.append(qkv[2 * dim :])
            for kind, numbers in zip("qkv", (queries[-1], keys[-1], values[-1]), strict=True):
                for j, node in enumerate(numbers):
                    node.label = f"{p}{kind}{t}_{j}"
        outputs: list[Vector] = [[] for _ in xs]
        weights: list[list[Vector]] = []
        for h in range(self.n_head):
            head = slice(h * d, (h + 1) * d)
            head_weights = []
            for t, q in enumerate(queries):
                scores = [dot(q[head], k[head]) for k in keys[: t + 1]]
                normaliser = ops.LOGSUMEXP(*scores)
                a = [(z - normaliser).exp() for z in scores]
                for s, node in enumerate(a):
                    node.label = f"{p}head{h}.a{t}_{s}"
                head_weights.append(a)
                for j in range(head.start, head.stop):
                    o = dot(a, [v[j] for v in values[: t + 1]])
                    o.label = f"{p}o{t}_{j}"
                    outputs[t].append(o)
            weights.append(head_weights)
        return outputs, weights


def _check_attention(dim: Any, n_head: Any, block_size: Any, bias: Any) -> None:
    _check_size("CausalSelfAttention", "dim", dim)
    _check_size("CausalSelfAttention", "n_head", n_head)
    _check_size("CausalSelfAttention", "block_size", block_size)
    _check_flag("CausalSelfAttention", "bias", bias)
    if dim % n_head:
        raise ValueError(
            f"CausalSelfAttention expected dim to be a multiple of n_head, got dim={dim} and "
            f"n_head={n_head}"
        )


@register
class Block(Module):
    """One transformer block, pre-norm as GPT-2:

        x = x + attn(norm_1(x))                 each position reads the earlier ones
        x = x + proj(relu(fc(norm_2(x))))       each position alone, 4 * n_embd hidden units

    `norm` is "rms" (RMSNorm, eps 1e-5) or "layer" (LayerNorm); `bias` is for every Linear,
    the attention and a LayerNorm. Called on a list of T positions, returns T positions.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        block_size: int,
        bias: bool = False,
        norm: str = "rms",
        seed: Seed = None,
    ) -> None:
        _check_norm(norm)
        rng = as_rng(seed)
        self.ln_1 = _norm_of(norm, n_embd, bias)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, bias, seed=rng)
        self.ln_2 = _norm_of(norm, n_embd, bias)
        self.fc = Linear(n_embd, 4 * n_embd, bias, seed=rng)
        self.proj = Linear(4 * n_embd, n_embd, bias, seed=rng)
        self.norm = norm
        self.set_labels()

    def config(self) -> dict[str, Any]:
        attn = self.attn.config()
        return {
            "n_embd": attn["dim"],
            "n_head": attn["n_head"],
            "block_size": attn["block_size"],
            "bias": attn["bias"],
            "norm": self.norm,
        }

    @classmethod
    def state_shapes(
        cls,
        n_embd: int,
        n_head: int,
        block_size: int,
        bias: bool = False,
        norm: str = "rms",
    ) -> dict[str, Shape]:
        _check_norm(norm)
        norm_shapes = _norm_of(norm, n_embd, bias, shapes=True)
        parts = {
            "ln_1": norm_shapes,
            "attn": CausalSelfAttention.state_shapes(n_embd, n_head, block_size, bias),
            "ln_2": norm_shapes,
            "fc": Linear.state_shapes(n_embd, 4 * n_embd, bias),
            "proj": Linear.state_shapes(4 * n_embd, n_embd, bias),
        }
        return {
            f"{part}.{key}": shape
            for part, shapes in parts.items()
            for key, shape in shapes.items()
        }

    def forward(self, xs: Sequence[Sequence[Input]]) -> list[Vector]:
        xs = [_values_of(x, "Block", len(x)) for x in xs]
        attended = self.attn([self.ln_1(x) for x in xs])
        p = self._prefix
        xs = [_add(x, a, f"{p}h{t}_") for t, (x, a) in enumerate(zip(xs, attended, strict=True))]
        return [
            _add(x, self.proj([h.relu() for h in self.fc(self.ln_2(x))]), f"{p}out{t}_")
            for t, x in enumerate(xs)
        ]

    def set_labels(self, prefix: str = "") -> None:
        """The residual sums are h<t>_<j> (after attention) and out<t>_<j>, for position t."""
        super().set_labels(prefix)
        self._prefix = prefix


def _add(x: Vector, y: Vector, label: str) -> Vector:
    """x + y, number by number, the sums labelled `label` followed by their index."""
    out = [a + b for a, b in zip(x, y, strict=True)]
    for j, node in enumerate(out):
        node.label = f"{label}{j}"
    return out


def _check_norm(norm: Any) -> None:
    if not isinstance(norm, str) or norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: expected one of {', '.join(NORMS)}")


def _norm_of(norm: str, dim: int, bias: bool, shapes: bool = False) -> Any:
    """The block's norm (or its state shapes): RMSNorm(dim, eps=1e-5) or LayerNorm(dim)."""
    options = {"eps": 1e-5} if norm == "rms" else {"bias": bias}
    if shapes:
        return NORMS[norm].state_shapes(dim, **options)
    return NORMS[norm](dim, **options)


@register
class GPT(Module):
    """A character-level GPT: for each position, the logits of the next token.

        x_t      = wte[id_t] + wpe[t]                       token and position embeddings
        x        = block(x) for each of n_layer blocks      (see `Block`)
        logits_t = lm_head(ln_f(x_t))                       vocab_size numbers per position

    `gpt(ids)` takes a list of 1..block_size token ids and returns one list of `vocab_size`
    logit Values per position; position t sees only ids 1..t. The defaults are microgpt's:
    `GPT(vocab_size=27)` is 1 layer, n_embd 16, 4 heads, block 16, RMSNorm, a ReLU MLP 4x
    wide, no biases. Every weight matrix starts N(0, 0.08^2) (microgpt's), norms' weights at 1.
    Two details are GPT-2's rather than microgpt's: the norms have their learnt weights, and a
    final norm comes before the head instead of one right after the embeddings.

    `state_dict` names its parts as nanoGPT does: `wte.weight`, `wpe.weight`,
    `blocks.0.ln_1.weight`, `blocks.0.attn.in_proj_weight`, ..., `ln_f.weight`,
    `lm_head.weight`; `nn.to_torch(gpt)` maps a LongTensor (B, T) of ids to logits (B, T, V).
    """

    init_std = 0.08
    causal = True
    """Position t's logits read positions 1..t only: `fit` need not compute padding after a
    sample's last target."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 16,
        n_embd: int = 16,
        n_head: int = 4,
        n_layer: int = 1,
        bias: bool = False,
        norm: str = "rms",
        seed: Seed = None,
    ) -> None:
        _check_gpt(vocab_size, block_size, n_layer)
        rng = as_rng(seed)
        self.wte = Embedding(vocab_size, n_embd, seed=rng)
        self.wpe = Embedding(block_size, n_embd, seed=rng)
        self.blocks = [
            Block(n_embd, n_head, block_size, bias, norm, seed=rng) for _ in range(n_layer)
        ]
        self.ln_f = _norm_of(norm, n_embd, bias)
        self.lm_head = Linear(n_embd, vocab_size, bias=False, seed=rng)
        for matrix in self._matrices():
            for row in matrix:
                for w in row:
                    w.data = rng.gauss(0.0, self.init_std)
        for name, bias_values in self.named_parameters():
            if name.endswith("bias"):
                for b in bias_values:
                    b.data = 0.0
        self.set_labels()

    def set_labels(self, prefix: str = "") -> None:
        """The embeddings' sums are labelled embed.x<t>_<j>, for position t."""
        super().set_labels(prefix)
        self._prefix = prefix

    def _matrices(self) -> list[list[list[Value]]]:
        matrices = [self.wte.weight, self.wpe.weight, self.lm_head.weight]
        for block in self.blocks:
            matrices += [
                block.attn.in_proj_weight,
                block.attn.out_proj.weight,
                block.fc.weight,
                block.proj.weight,
            ]
        return matrices

    @property
    def vocab_size(self) -> int:
        return self.wte.num_embeddings

    @property
    def block_size(self) -> int:
        return self.wpe.num_embeddings

    def config(self) -> dict[str, Any]:
        block = self.blocks[0].config()
        return {
            "vocab_size": self.vocab_size,
            "block_size": self.block_size,
            "n_embd": block["n_embd"],
            "n_head": block["n_head"],
            "n_layer": len(self.blocks),
            "bias": block["bias"],
            "norm": block["norm"],
        }

    @classmethod
    def state_shapes(
        cls,
        vocab_size: int,
        block_size: int = 16,
        n_embd: int = 16,
        n_head: int = 4,
        n_layer: int = 1,
        bias: bool = False,
        norm: str = "rms",
    ) -> dict[str, Shape]:
        _check_gpt(vocab_size, block_size, n_layer)
        block = Block.state_shapes(n_embd, n_head, block_size, bias, norm)
        shapes = {"wte.weight": (vocab_size, n_embd), "wpe.weight": (block_size, n_embd)}
        for i in range(n_layer):
            shapes |= {f"blocks.{i}.{key}": shape for key, shape in block.items()}
        shapes |= {f"ln_f.{key}": s for key, s in _norm_of(norm, n_embd, bias, True).items()}
        return shapes | {"lm_head.weight": (vocab_size, n_embd)}

    def forward(self, ids: Sequence[int]) -> list[Vector]:
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids:
            raise ValueError(f"GPT expected a non-empty list of token ids, got {ids!r}")
        if len(ids) > self.block_size:
            raise ValueError(
                f"GPT got {len(ids)} token ids, more than its block_size {self.block_size}"
            )
        tokens, positions = self.wte(ids), self.wpe(list(range(len(ids))))
        xs = [
            _add(tok, pos, f"{self._prefix}embed.x{t}_")
            for t, (tok, pos) in enumerate(zip(tokens, positions, strict=True))
        ]
        for block in self.blocks:
            xs = block(xs)
        return [self.lm_head(self.ln_f(x)) for x in xs]


def _check_gpt(vocab_size: Any, block_size: Any, n_layer: Any) -> None:
    _check_size("GPT", "vocab_size", vocab_size)
    _check_size("GPT", "block_size", block_size)
    _check_size("GPT", "n_layer", n_layer)


def generate(
    model: GPT,
    n: int,
    *,
    tokenizer: CharTokenizer | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: Seed = None,
) -> list[str]:
    """`n` new sequences sampled from `model`, one token at a time, decoded to strings.

    Each starts from the boundary token; at each step the model reads the tokens so far (the
    last `block_size` of them) and the next token is drawn from softmax(logits / temperature)
    at the last position, restricted to the `top_k` likeliest tokens if given. A sequence ends
    when the boundary token is drawn, or after `block_size` tokens. A temperature below 1
    sharpens the distribution (likelier, duller names), above 1 flattens it. `tokenizer`
    (default: the names' one, `nn.data.names_tokenizer()`) turns ids back into characters.
    The same `seed` gives the same samples.
    """
    tokenizer = names_tokenizer() if tokenizer is None else tokenizer
    _check_generate(model, n, tokenizer, temperature, top_k)
    rng = as_rng(seed)
    vocab = range(model.vocab_size)
    samples = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for _ in range(n):
                ids = [tokenizer.boundary]
                while len(ids) <= model.block_size:
                    logits = [z.data / temperature for z in model(ids[-model.block_size :])[-1]]
                    if top_k is not None and top_k < len(logits):
                        kth = sorted(logits, reverse=True)[top_k - 1]
                        logits = [z if z >= kth else -math.inf for z in logits]
                    top = max(logits)
                    weights = [math.exp(z - top) for z in logits]
                    token = rng.choices(vocab, weights=weights)[0]
                    if token == tokenizer.boundary:
                        break
                    ids.append(token)
                samples.append(tokenizer.decode(ids[1:]))
    finally:
        model.train(was_training)
    return samples


def _check_generate(
    model: Any, n: Any, tokenizer: CharTokenizer, temperature: Any, top_k: Any
) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"generate samples from a GPT, got {type(model).__name__}")
    if not is_integer(n) or n < 0:
        raise ValueError(f"generate expected n to be an int >= 0, got {n!r}")
    if len(tokenizer.vocab) != model.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer.vocab)} tokens but the model's vocab_size is "
            f"{model.vocab_size}: pass the tokenizer the model was trained with"
        )
    if not is_real(temperature) or not 0.0 < temperature < math.inf:
        raise ValueError(f"generate expected a temperature > 0, got {temperature!r}")
    if top_k is not None and (not is_integer(top_k) or top_k < 1):
        raise ValueError(f"generate expected top_k to be an int >= 1 or None, got {top_k!r}")
