"""The batched back-end: a traced scalar program run over a whole batch as NumPy array code.

A traced program describes ONE sample. Run over a batch, each scalar variable becomes a column
of numbers, one per sample, and the program's structure shows which columns belong together:

* `dot` equations that read the same per-sample operands with different parameter rows are the
  neurons of one layer: together they are one matrix product, `Z = A @ W.T + b`, whose
  backward is `dW = dZ.T @ A` and `dA = dZ @ W`;
* the same op applied to every column of such a block (an activation over a layer) is one
  elementwise op on a (batch, width) matrix; its backward is the op table's own partial rule,
  evaluated on matrices;
* a `vsum` or `dot` over a whole block is a row reduction;
* anything else is one array op per scalar equation over the batch (a (batch, 1) column), so
  every program runs, whatever its shape; recognition only makes it faster.

Nothing here knows about `nn`: a hand-written network of `dot` neurons is recognised the same.
The generated code is kept as `.source`, the matrix form of the program a learner can read.

Errors: the arrays are computed without NumPy's warnings. If a result is not finite, the batch
is run again with a check after every op, and the first element that went wrong is recomputed
by the op's own forward on floats, which raises the eager engine's error (a log of a negative
number names the op and the number).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import ir, ops
from .codegen import Printer, compile_source

# ------------------------------------------------------------------------------------------
# Operands of the block program


@dataclass(eq=False)
class Block:
    """A (batch, width) matrix of the block program; a (1, width) row, the same for every
    sample, when `wide` (a mean over the batch axis and what is computed from it alone); a
    scalar (shape ()) when `scalar`."""

    name: str
    width: int
    scalar: bool = False
    wide: bool = False
    grad: str | None = None  # the name of its gradient, once some backward term reached it
    grad_is_alias: bool = False  # the gradient's name is another array's: copy before writing


@dataclass(frozen=True)
class Operand:
    """How a block op reads one input: a whole block, some of its columns, a parameter, a row
    of parameters (one per column) or a constant. `columns` is None for the whole block."""

    kind: str  # "block", "param", "params" or "const"
    block: Block | None = None
    columns: tuple[int, ...] | None = None
    index: int = 0  # the parameter's index in theta
    value: float = 0.0
    indices: tuple[int, ...] = ()  # "params": each column's parameter's index in theta


@dataclass(eq=False)
class BlockOp:
    kind: str  # "matmul", "elementwise", "reduce", "concat"
    out: Block
    op: ops.Op | None = None
    operands: list[Operand] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Compiler:
    """Lowers a forward scalar program to block ops, then prints forward and backward code."""

    def __init__(
        self, program: ir.Program, input_grads: bool, n_labels: int = 0, careful: bool = False
    ) -> None:
        self.program = program
        self.input_grads = input_grads
        # careful: each product of the chain rule is 0 where either factor is 0, as eager
        # `backward` takes it (0 * inf is 0, not nan); slower, run only where nan came out.
        self.careful = careful
        self.pieces: dict[str, list[tuple[Block, list[int] | None]]] = {}
        self.weight_grads: dict[str, str | None] = {}
        self.scatter: dict[str, str] = {}
        self.checks: dict[int, BlockOp] = {}  # line number -> the elementwise op it computes
        self.param_index = {v: i for i, v in enumerate(program.params)}
        # The per-sample inputs: the features X, then the labels as numbers Y, then the
        # numbers modules feed the program at each run F (see `autograd_core.batch`).
        n_feeds = sum(len(feed.values) for feed in program.feeds)
        self.X = Block("X", len(program.inputs) - n_labels - n_feeds)
        others = (("Y", n_labels), ("F", n_feeds))
        self.inputs = [self.X, *(Block(name, width) for name, width in others if width)]
        self.where: dict[ir.Var, tuple[Block, int]] = {}
        self.columns: dict[int, list[Any]] = {}  # id(block) -> its variables, column by column
        columns = ((block, j) for block in self.inputs for j in range(block.width))
        for v, (block, j) in zip(program.inputs, columns, strict=True):
            self._place(v, block, j)
        self.block_ops: list[BlockOp] = []
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self.printer = Printer()
        self.scratch = ir.Program()
        self.constants: dict[str, Any] = {}
        self.users: dict[ir.Var, list[ir.Equation]] = {}
        self.open_user: dict[ir.Var, int] = {}  # index of the first user not yet lowered
        for eq in program.equations:
            for x in eq.inputs:
                if isinstance(x, ir.Var):
                    self.users.setdefault(x, []).append(eq)

    # -- names -----------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}{self.counts[prefix]}"

    def constant(self, prefix: str, value: Any) -> str:
        name = self.fresh(prefix)
        self.constants[name] = value
        return name

    # -- forward: grouping scalar equations into block ops ----------------------------------

    def lower(self) -> None:
        done: set[int] = set()
        matmul_groups = self._matmul_groups()
        convolutions = self._convolutions(matmul_groups)
        for eq in self.program.equations:
            if id(eq) in done:
                continue
            windows = convolutions.get(id(eq))
            group = matmul_groups.get(id(eq))
            layout = self._window_layout(windows) if windows is not None else None
            if layout is not None:
                self._convolution(windows, layout)
                done.update(id(member) for window in windows for member in window)
                continue
            if group is not None:
                self._matmul(group)
            elif eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP) and self._row_reduce(eq):
                pass
            else:
                group = self._elementwise_group(eq, done)
                self._elementwise(group)
                done.update(id(member) for member in group)
                continue
            done.update(id(member) for member in (group or [eq]))

    def operand(self, x: ir.Operand) -> Operand:
        if not isinstance(x, ir.Var):
            return Operand("const", value=x)
        if x in self.param_index:
            return Operand("param", index=self.param_index[x])
        block, j = self.where[x]
        if block.scalar or block.width == 1:
            return Operand("block", block)
        return Operand("block", block, (j,))

    def _batched(self, x: ir.Operand) -> bool:
        """x is a column of a block: per sample, or a row the same for every sample."""
        if not isinstance(x, ir.Var) or x in self.param_index:
            return False
        return not self.where[x][0].scalar

    def _per_sample(self, x: ir.Operand) -> bool:
        """x is a column of a (batch, width) block: what matrix products and reductions read."""
        return self._batched(x) and not self.where[x][0].wide

    def _matmul_groups(self) -> dict[int, list[ir.Equation]]:
        """dot equations pairing parameters with the same per-sample operands, by first member."""
        by_key: dict[tuple, list[ir.Equation]] = {}
        for eq in self.program.equations:
            if eq.op is not ops.DOT:
                continue
            pairs = _pairs(eq)
            if all(w in self.param_index for w, _ in pairs) and any(
                isinstance(x, ir.Var) and x not in self.param_index for _, x in pairs
            ):
                key = tuple(x if isinstance(x, ir.Var) else ("c", x) for _, x in pairs)
                if not any(x in self.param_index for _, x in pairs):
                    by_key.setdefault(key, []).append(eq)
        return {id(group[0]): group for group in by_key.values()}

    def _convolutions(
        self, matmul_groups: dict[int, list[ir.Equation]]
    ) -> dict[int, list[list[ir.Equation]]]:
        """Matrix-product groups that share one weight matrix over different windows of the
        same block (a convolution's output positions), by the first equation of the first."""
        by_rows: dict[tuple, list[list[ir.Equation]]] = {}
        for group in matmul_groups.values():
            rows = tuple(tuple(w for w, _ in _pairs(eq)) for eq in group)
            by_rows.setdefault(rows, []).append(group)
        found = {}
        for windows in by_rows.values():
            if len(windows) > 1:
                found[id(windows[0][0])] = windows
        return found

    def _window_layout(self, windows: list[list[ir.Equation]]) -> Any:
        """Where each window's operands lie, if the windows fit one gathered product.

        Every window must read columns of one and the same block, or the constant 0.0 (zero
        padding, read from a column of zeros appended to the block), in the same positions as
        the others except for the padding, and may pair one weight with the constant 1.0 (the
        bias) in the same position in every window. Returns (block, gather index (windows, k),
        the weight positions, the bias positions, padded), or None.
        """
        operands = [[x for _, x in _pairs(window[0])] for window in windows]
        width = len(operands[0])
        bias = [k for k in range(width) if all(_is_const(ops_[k], 1.0) for ops_ in operands)]
        if len(bias) > 1:
            return None
        weights = [k for k in range(width) if k not in bias]
        sources: dict[int, Block] = {}
        index, padded = [], False
        for ops_ in operands:
            row = []
            for k in weights:
                x = ops_[k]
                if _is_const(x, 0.0):
                    row.append(-1)
                    padded = True
                elif isinstance(x, ir.Var) and self._per_sample(x):
                    block, j = self.where[x]
                    sources[id(block)] = block
                    row.append(j)
                else:
                    return None
            index.append(row)
        if len(sources) != 1:
            return None
        (block,) = sources.values()
        gather = _np().array(index)
        gather[gather < 0] = block.width  # the appended column of zeros
        return block, gather, weights, bias, padded

    def _convolution(self, windows: list[list[ir.Equation]], layout: Any) -> None:
        """One weight matrix over every window: gather the windows, one product for all.

        Xw = B[:, IDX]                                   (n, windows, k), IDX the columns
        Z  = (Xw @ W.T + b), channels first, flattened   (n, channels * windows)

        With zero padding, B is first given a column of zeros, which IDX reads for each
        padded position.
        """
        source, index, weight_cols, bias_cols, padded = layout
        rows = [[self.param_index[w] for w, _ in _pairs(eq)] for eq in windows[0]]
        n_windows, n_channels = len(windows), len(windows[0])
        Z = Block(self.fresh("Z"), n_windows * n_channels)
        number = Z.name[1:]
        P = self._weights(rows, f"P{number}")
        W, b = f"W{number}", None
        self.lines.append(f"{W} = {P}[:, {_index_text(weight_cols)}]")
        if bias_cols:
            b = f"b{number}"
            self.lines.append(f"{b} = {P}[:, {bias_cols[0]}]")
        IDX = self.constant("windows", index)
        Xw = f"Xw{number}"
        B = _take(source, None)
        if padded:
            B = f"np.concatenate(({B}, np.zeros((n, 1))), axis=1)"
        self.lines.append(f"{Xw} = {B}[:, {IDX}]")
        bias = f" + {b}" if b else ""
        self.lines.append(
            f"{Z.name} = ({Xw} @ {W}.T{bias}).transpose(0, 2, 1).reshape(n, {Z.width})"
        )
        for position, window in enumerate(windows):
            for channel, eq in enumerate(window):
                self._place(eq.out, Z, channel * n_windows + position)
        extra = {
            "P": P,
            "W": W,
            "b": b,
            "Xw": Xw,
            "IDX": IDX,
            "source": source,
            "shape": (n_windows, n_channels),
            "k": len(weight_cols),
            "weight_cols": _index_text(weight_cols),
            "bias_col": bias_cols,
            "padded": padded,
        }
        self.block_ops.append(BlockOp("convolution", Z, extra=extra))

    def _convolution_backward(self, block_op: BlockOp, dZ: str) -> None:
        """dW += sum over windows of dZ.T @ Xw; the inputs' gradient scattered back per window."""
        e = block_op.extra
        n_windows, n_channels = e["shape"]
        P, W, b, Xw = e["P"], e["W"], e["b"], e["Xw"]
        dZw = f"{dZ}w"
        self.lines.append(f"{dZw} = {dZ}.reshape(n, {n_channels}, {n_windows}).transpose(0, 2, 1)")
        self.lines.append(f"d{P} = {self.weight_grads[P]}")
        self.lines.append(f"d{W} = d{P}[:, {e['weight_cols']}]")
        self.lines.append(f"d{W} += {dZw}.reshape(-1, {n_channels}).T @ {Xw}.reshape(-1, {e['k']})")
        if b is not None:
            self.lines.append(f"d{b} = d{P}[:, {e['bias_col'][0]}]")
            self.lines.append(f"d{b} += {dZw}.sum((0, 1))")
        if P in self.scatter:
            self.lines.append(f"np.add.at(dtheta, {self.scatter[P]}, d{P})")
        source = e["source"]
        if source in self.inputs and not self.input_grads:
            return
        self._own(source)
        dXw = f"{dZw} @ {W}"
        if not e["padded"]:
            self.lines.append(f"np.add.at({source.grad}, (slice(None), {e['IDX']}), {dXw})")
            return
        # Scattered into the block and its column of zeros, whose gradient is dropped.
        padded = f"d{source.name}p"
        self.lines.append(f"{padded} = np.zeros((n, {source.width + 1}))")
        self.lines.append(f"np.add.at({padded}, (slice(None), {e['IDX']}), {dXw})")
        self.lines.append(f"{source.grad} += {padded}[:, :{source.width}]")

    def _matmul(self, group: list[ir.Equation]) -> None:
        pairs = [_pairs(eq) for eq in group]
        operands = [x for _, x in pairs[0]]
        rows = [[self.param_index[w] for w, _ in row] for row in pairs]
        batched_cols = [k for k, x in enumerate(operands) if self._per_sample(x)]
        const_cols = [k for k, x in enumerate(operands) if not isinstance(x, ir.Var)]
        other_cols = [k for k in range(len(operands)) if k not in batched_cols + const_cols]
        if other_cols:  # a per-sample operand that is a scalar of the program: no matmul
            for eq in group:
                self._elementwise([eq])
            return
        Z = Block(self.fresh("Z"), len(group))
        number = Z.name[1:]
        consts = [operands[k] for k in const_cols]
        # A layer's parameters P are [W | b]: the weights meet the inputs, the bias meets 1.0.
        whole = batched_cols == list(range(len(operands)))
        P = self._weights(rows, f"W{number}" if whole else f"P{number}")
        W, b = P, None
        if not whole:
            W = f"W{number}"
            self.lines.append(f"{W} = {P}[:, {_index_text(batched_cols)}]")
        if consts == [1.0]:
            b = f"b{number}"
            self.lines.append(f"{b} = {P}[:, {const_cols[0]}]")
        A = self._assemble([operands[k] for k in batched_cols])
        text = f"{Z.name} = {A} @ {W}.T"
        if b is not None:
            text += f" + {b}"
        elif const_cols:
            c = self.constant("c", _np().array(consts))
            text += f" + {P}[:, {_index_text(const_cols)}] @ {c}"
        self.lines.append(text)
        for j, eq in enumerate(group):
            self._place(eq.out, Z, j)
        extra = {
            "P": P,
            "W": W,
            "b": b,
            "A": A,
            "batched_cols": batched_cols,
            "const_cols": const_cols,
            "consts": consts,
            "pieces": self.pieces[A],
        }
        self.block_ops.append(BlockOp("matmul", Z, extra=extra))

    def _weights(self, rows: list[list[int]], name: str) -> str:
        """The parameter matrix as a view of theta where its rows lie in order there."""
        np = _np()
        index = np.array(rows)
        start = int(index[0, 0])
        if np.array_equal(index, start + np.arange(index.size).reshape(index.shape)):
            source = f"theta[{start}:{start + index.size}].reshape{index.shape}"
            grad_source = f"dtheta[{start}:{start + index.size}].reshape{index.shape}"
        else:
            idx = self.constant("index", index)
            source, grad_source = f"theta[{idx}]", f"np.zeros({index.shape})"
            self.scatter[name] = idx
        self.lines.append(f"{name} = {source}")
        self.weight_grads[name] = grad_source
        return name

    def _assemble(self, xs: Sequence[ir.Var]) -> str:
        """An expression for the (batch, len(xs)) matrix whose columns are the variables xs."""
        runs: list[tuple[Block, list[int]]] = []
        for x in xs:
            block, j = self.where[x]
            if runs and runs[-1][0] is block:
                runs[-1][1].append(j)
            else:
                runs.append((block, [j]))
        pieces = [
            (block, None if cols == list(range(block.width)) else cols) for block, cols in runs
        ]
        texts = [_take(block, cols) for block, cols in pieces]
        if len(texts) == 1:
            name = texts[0]
        else:
            name = self.fresh("A")
            self.lines.append(f"{name} = np.concatenate(({', '.join(texts)}), axis=1)")
        self.pieces[name] = pieces
        return name

    def _row_reduce(self, eq: ir.Equation) -> bool:
        """vsum over batched columns, or dot of two batched halves: one row reduction."""
        if eq.op is ops.VSUM and all(map(self._per_sample, eq.inputs)) and len(eq.inputs) > 1:
            M = self._assemble(eq.inputs)
            out = Block(self.fresh("s"), 1)
            self.lines.append(f"{out.name} = {M}.sum(1, keepdims=True)")
            self.block_ops.append(BlockOp("reduce", out, ops.VSUM, extra={"M": [M]}))
        elif eq.op is ops.DOT and all(map(self._per_sample, eq.inputs)) and len(eq.inputs) > 2:
            half = len(eq.inputs) // 2
            L, R = self._assemble(eq.inputs[:half]), self._assemble(eq.inputs[half:])
            out = Block(self.fresh("s"), 1)
            self.lines.append(f"{out.name} = ({L} * {R}).sum(1, keepdims=True)")
            self.block_ops.append(BlockOp("reduce", out, ops.DOT, extra={"M": [L, R]}))
        elif eq.op is ops.LOGSUMEXP and all(map(self._per_sample, eq.inputs)):
            M = self._assemble(eq.inputs)
            out = Block(self.fresh("s"), 1)
            m = self.fresh("m")
            self.lines.append(f"{m} = {M}.max(1, keepdims=True)")
            self.lines.append(f"{out.name} = {m} + np.log(np.exp({M} - {m}).sum(1, keepdims=True))")
            self.block_ops.append(BlockOp("reduce", out, ops.LOGSUMEXP, extra={"M": [M]}))
        else:
            return False
        self._place(eq.out, out, 0)
        return True

    def _elementwise_group(self, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """eq and the equations applying the same op to the other columns of its block."""
        if eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP):
            return [eq]
        for k, x in enumerate(eq.inputs):
            if not self._batched(x) or self.where[x][0].width == 1:
                continue
            block = self.where[x][0]
            group, seen = [], set()
            for column in self._columns_of(block):
                users = self.users.get(column, [])
                # Users already lowered stay lowered: skip them once, not at every equation.
                start = self.open_user.get(column, 0)
                while start < len(users) and id(users[start]) in done:
                    start += 1
                self.open_user[column] = start
                for other in (users[i] for i in range(start, len(users))):
                    if id(other) in done or column in seen or other.op is not eq.op:
                        continue
                    if other.inputs[k] is column and self._aligned(eq, other):
                        group.append(other)
                        seen.add(column)
                        break
            if eq in group:
                return group
        return [eq]

    def _place(self, v: ir.Var, block: Block, j: int) -> None:
        """Record that variable v is column j of block (both ways, so neither is a search)."""
        self.where[v] = (block, j)
        self.columns.setdefault(id(block), [None] * block.width)[j] = v

    def _columns_of(self, block: Block) -> list[ir.Var]:
        return self.columns[id(block)]

    def _aligned(self, eq: ir.Equation, other: ir.Equation) -> bool:
        """Each input of `other` is eq's own, or a column of the same block as eq's."""
        for x, y in zip(eq.inputs, other.inputs, strict=True):
            if x is y or (x in self.param_index and y in self.param_index):
                continue  # the same operand, or one parameter per column: a row of theta
            if y not in self.where:  # not computed yet (it may need eq itself): no column
                return False
            if not (self._batched(x) and self._batched(y)):
                return False
            if self.where[x][0] is not self.where[y][0]:
                return False
        return True

    def _elementwise(self, group: list[ir.Equation]) -> None:
        first = group[0]
        operands = []
        for k, x in enumerate(first.inputs):
            if all(member.inputs[k] is x for member in group):
                operand = self.operand(x)
            elif x in self.param_index:
                indices = tuple(self.param_index[member.inputs[k]] for member in group)
                operand = Operand("params", indices=indices)
            else:
                block = self.where[x][0]
                cols = tuple(self.where[member.inputs[k]][1] for member in group)
                full = cols == tuple(range(block.width))
                operand = Operand("block", block, None if full else cols)
            operands.append(operand)
        if first.op is ops.BATCH_MEAN and operands[0].kind == "block":
            if not operands[0].block.wide:
                self._batch_mean(group, operands[0])
                return
        rows = [o.block for o in operands if o.kind == "block" and not o.block.scalar]
        scalar = not rows and all(o.kind != "params" for o in operands)
        wide = not scalar and all(block.wide for block in rows)
        out = Block(self.fresh("v" if len(group) == 1 else "H"), len(group), scalar, wide)
        args = [self.text(o) for o in operands]
        self.lines.append(f"{out.name} = {self.printer.expression(first.op, args)}")
        self.block_ops.append(BlockOp("elementwise", out, first.op, operands))
        self.checks[len(self.lines) - 1] = self.block_ops[-1]
        for j, member in enumerate(group):
            self._place(member.out, out, j)

    def _batch_mean(self, group: list[ir.Equation], operand: Operand) -> None:
        """The mean over the batch of each column: one (1, width) row, the same for every
        sample. Its backward spreads each column's gradient evenly over the n samples."""
        out = Block(self.fresh("M"), len(group), wide=True)
        rows = _take(operand.block, operand.columns)
        self.lines.append(f"{out.name} = {rows}.mean(0, keepdims=True)")
        self.block_ops.append(BlockOp("batch_mean", out, ops.BATCH_MEAN, [operand]))
        for j, member in enumerate(group):
            self._place(member.out, out, j)

    def text(self, o: Operand) -> Any:
        """A Var standing for the operand's expression (printed by its name)."""
        if o.kind == "const":
            return o.value
        if o.kind == "param":
            return _named(f"theta[{o.index}]", self.scratch)
        if o.kind == "params":
            return _named(f"theta[None, {self._theta_index(o.indices)}]", self.scratch)
        return _named(_take(o.block, o.columns), self.scratch)

    def _theta_index(self, indices: tuple[int, ...]) -> str:
        """Where a row of parameters lies in theta: a slice where it can, else an index array."""
        cols = list(indices)
        if len(set(cols)) == len(cols) and cols == list(range(cols[0], cols[0] + len(cols))):
            return _index_text(cols)
        return self.constant("index", _np().array(cols))

    # -- backward ---------------------------------------------------------------------------

    def add_grad(self, o: Operand, term: Any, out: Block) -> None:
        """Add the backward term (shaped as `out`) into the gradient of operand `o`."""
        if o.kind == "const" or (isinstance(term, float) and term == 0.0):
            return
        if o.kind == "block" and o.block in self.inputs and not self.input_grads:
            return
        term_text = self.printer.operand(term)
        if o.kind == "param":
            summed = term_text if out.scalar else f"({term_text}).sum()"
            self.lines.append(f"dtheta[{o.index}] += {summed}")
            return
        if o.kind == "params":  # one parameter per column: sum over the samples
            if len(set(o.indices)) == len(o.indices):
                index = self._theta_index(o.indices)
                self.lines.append(f"dtheta[{index}] += ({term_text}).sum(0)")
            else:  # a parameter read by two columns gets both terms
                index = self.constant("index", _np().array(o.indices))
                self.lines.append(f"np.add.at(dtheta, {index}, ({term_text}).sum(0))")
            return
        block = o.block
        if block.scalar:
            summed = term_text if out.scalar else f"({term_text}).sum()"
            self._accumulate(block, summed, alias=False)
            return
        if out.scalar:
            term_text = f"np.full(({'1' if block.wide else 'n'}, 1), {term_text})"
        elif block.wide and not out.wide:  # a row the same for every sample: sum the samples
            term_text = f"({term_text}).sum(0, keepdims=True)"
        cols = o.columns
        if cols is None or block.width == 1:
            if out.width != block.width:
                term_text = f"({term_text}).sum(1, keepdims=True)"
            self._accumulate(block, term_text, alias=isinstance(term, ir.Var))
            return
        if len(cols) == 1 and out.width > 1:
            term_text = f"({term_text}).sum(1, keepdims=True)"
        self._own(block)
        if len(set(cols)) < len(cols):  # `a[:, [0, 0]] += t` would add to column 0 only once
            self.lines.append(f"np.add.at({block.grad}, (slice(None), {list(cols)}), {term_text})")
            return
        self.lines.append(f"{block.grad}[:, {_index_text(list(cols))}] += {term_text}")

    def _accumulate(self, block: Block, text: str, alias: bool) -> None:
        if block.grad is None and text == "d" + block.name:  # the line made it under its name
            block.grad, block.grad_is_alias = text, False
        elif block.grad is None:
            block.grad = "d" + block.name
            self.lines.append(f"{block.grad} = {text}")
            block.grad_is_alias = alias
        else:
            self.lines.append(f"{block.grad} = {block.grad} + {text}")
            block.grad_is_alias = False

    def _own(self, block: Block) -> None:
        """Make sure the block's gradient is an array of its own that may be written in place."""
        if block.grad is None:
            block.grad = "d" + block.name
            rows = 1 if block.wide else "n"
            self.lines.append(f"{block.grad} = np.zeros(({rows}, {block.width}))")
        elif block.grad_is_alias:
            self.lines.append(f"{block.grad} = {block.grad}.copy()")
        block.grad_is_alias = False

    def add_to_pieces(self, name: str, grad_text: str) -> None:
        """Route the gradient of an assembled matrix back to the blocks it was taken from."""
        start = 0
        for block, cols in self.pieces[name]:
            n_cols = block.width if cols is None else len(cols)
            part = (
                grad_text
                if len(self.pieces[name]) == 1
                else f"{grad_text}[:, {start}:{start + n_cols}]"
            )
            start += n_cols
            self.add_grad(
                Operand("block", block, None if cols is None else tuple(cols)),
                _named(part, self.scratch),
                Block("_", n_cols),
            )

    def backward(self, seeds: list[tuple[ir.Var, str]]) -> None:
        for var, seed in seeds:
            self.add_grad(self.operand(var), _named(seed, self.scratch), Block("_", 1))
        for block_op in reversed(self.block_ops):
            out = block_op.out
            if out.grad is None:
                continue
            g = _named(out.grad, self.scratch)
            if block_op.kind == "matmul":
                self._matmul_backward(block_op, out.grad)
            elif block_op.kind == "convolution":
                self._convolution_backward(block_op, out.grad)
            elif block_op.kind == "batch_mean":
                # d mean / d x_i = 1 / n for each sample i: the row's gradient, spread evenly.
                (operand,) = block_op.operands
                spread = f"np.broadcast_to({out.grad} / n, (n, {out.width}))"
                self.add_grad(operand, _named(spread, self.scratch), Block("_", out.width))
            elif block_op.kind == "reduce":
                M = block_op.extra["M"]
                if block_op.op is ops.VSUM:
                    # Every column gets the row's gradient: spread it to M's width, so that
                    # each piece is sliced from it and a repeated column counts each time.
                    self.add_to_pieces(M[0], f"np.broadcast_to({out.grad}, {M[0]}.shape)")
                elif block_op.op is ops.LOGSUMEXP:  # softmax times the upstream gradient
                    softmax = f"np.exp({M[0]} - {out.name})"
                    self.add_to_pieces(M[0], self._product(softmax, out.grad))
                else:
                    self.add_to_pieces(M[0], self._product(out.grad, M[1]))
                    self.add_to_pieces(M[1], self._product(out.grad, M[0]))
            else:
                self._elementwise_backward(block_op, g)

    def _elementwise_backward(self, block_op: BlockOp, g: ir.Var) -> None:
        """Each input's term: the op table's partial rule, evaluated on the blocks, times g."""
        operands = block_op.operands
        args = [self.text(o) for o in operands]
        start = len(self.scratch.equations)
        partials = block_op.op.partials(_named(block_op.out.name, self.scratch), *args)
        terms = [
            # A partial that is the number 0 adds nothing, as in eager `backward` (0 * inf).
            self.scratch.emit(ops.MUL, [local, g]) if self._wanted(o) and local != 0.0 else 0.0
            for o, local in zip(operands, partials, strict=True)
        ]
        new = self.scratch.equations[start:]
        made_here = {eq.out for eq in new}
        named: set[int] = set()
        # A block read by two operands (x - x) gets two terms: neither is its whole gradient.
        readers = [id(o.block) for o, t in zip(operands, terms, strict=True) if o.kind == "block"]
        for o, term in zip(operands, terms, strict=True):
            # A term that is the whole gradient of its input is named for it: dZ1 = ...
            if (
                term in made_here
                and self._first_full_grad(o, block_op.out)
                and readers.count(id(o.block)) == 1
            ):
                if id(o.block) not in named:
                    term.name = "d" + o.block.name
                    named.add(id(o.block))
        needed = {term for term in terms if isinstance(term, ir.Var)}
        kept = []
        for eq in reversed(new):
            if eq.out in needed:
                kept.append(eq)
                needed.update(x for x in eq.inputs if isinstance(x, ir.Var))
        products = {term for term in terms if term in made_here}
        self.lines.extend(self._line(eq, eq.out in products) for eq in reversed(kept))
        for o, term in zip(operands, terms, strict=True):
            self.add_grad(o, term, block_op.out)

    def _wanted(self, o: Operand) -> bool:
        """Whether a gradient for this operand is of any use."""
        if o.kind == "const":
            return False
        return not (o.kind == "block" and o.block in self.inputs and not self.input_grads)

    def _first_full_grad(self, o: Operand, out: Block) -> bool:
        return (
            o.kind == "block"
            and not o.block.scalar
            and not out.scalar
            and o.block.grad is None
            and (o.columns is None or o.block.width == 1)
            and o.block.width == out.width
            and o.block.wide == out.wide
        )

    def _matmul_backward(self, block_op: BlockOp, dZ: str) -> None:
        """dW += dZ.T @ A, db += the column sums of dZ, dA = dZ @ W."""
        e = block_op.extra
        P, W, b, A = e["P"], e["W"], e["b"], e["A"]
        self.lines.append(f"d{P} = {self.weight_grads[P]}")
        if W != P:
            self.lines.append(f"d{W} = d{P}[:, {_index_text(e['batched_cols'])}]")
        self.lines.append(f"d{W} += {dZ}.T @ {A}")
        if b is not None:
            self.lines.append(f"d{b} = d{P}[:, {e['const_cols'][0]}]")
            self.lines.append(f"d{b} += {dZ}.sum(0)")
        elif e["const_cols"]:
            c = self.constant("c", _np().array(e["consts"]))
            cols = _index_text(e["const_cols"])
            self.lines.append(f"d{P}[:, {cols}] += np.outer({dZ}.sum(0), {c})")
        if P in self.scatter:
            self.lines.append(f"np.add.at(dtheta, {self.scatter[P]}, d{P})")
        pieces = e["pieces"]
        if not (self.input_grads or any(block not in self.inputs for block, _ in pieces)):
            return
        block, cols = pieces[0]
        if len(pieces) == 1 and cols is None and block.grad is None:
            self._accumulate(block, f"{dZ} @ {W}", alias=False)
            return
        dA = self.fresh("dA")
        self.lines.append(f"{dA} = {dZ} @ {W}")
        self.add_to_pieces(A, dA)

    def output(self, x: ir.Operand, rows: str = "n") -> str:
        """An expression for a (batch, 1) column holding `x` for every sample; with rows="1",
        the (1, 1) number of an `x` that is the same for every sample (a report)."""
        if not isinstance(x, ir.Var):
            return f"np.full(({rows}, 1), {x!r})"
        if x in self.param_index:
            return f"np.full(({rows}, 1), theta[{self.param_index[x]}])"
        block, j = self.where[x]
        if block.scalar:
            return f"np.full(({rows}, 1), {block.name})"
        if rows == "1" and not block.wide:
            raise ValueError(
                f"a reported value must be the same for every sample (a batch mean, or computed "
                f"from batch means and parameters); {x.name} differs from sample to sample"
            )
        column = _take(block, None if block.width == 1 else (j,))
        return f"np.broadcast_to({column}, (n, 1))" if block.wide and rows == "n" else column

    def source(
        self, header: str, returned: str, end: int | None = None, checked: bool = False
    ) -> str:
        """The function: its lines up to `end` (all by default), then `return returned`.
        `checked` adds a check after every elementwise op of the forward pass, which raises
        the eager error at the first element that went wrong."""
        body = []
        for number, line in enumerate(self.lines[:end]):
            body.append(line)
            if checked and number in self.checks:
                block_op = self.checks[number]
                args = ", ".join(self.printer.operand(self.text(o)) for o in block_op.operands)
                body.append(f"_check({number}, {block_op.out.name}, ({args},))")
        lines = [header, "    n = X.shape[0]", *["    " + b for b in body]]
        return "\n".join([*lines, f"    return {returned}", ""])

    def function(
        self,
        header: str,
        returned: str,
        owner: object,
        end: int | None = None,
        checked: bool = False,
    ) -> Any:
        """The generated function `run` (see `source`), compiled."""
        source = self.source(header, returned, end, checked)
        return compile_source(source, owner, self.namespace())["run"]

    def _product(self, a: str, b: str) -> str:
        """a * b, in careful mode 0 where either is 0 (see `careful`)."""
        return f"_times({a}, {b})" if self.careful else f"({a} * {b})"

    def _line(self, eq: ir.Equation, product: bool) -> str:
        if product and self.careful:
            a, b = (self.printer.operand(x) for x in eq.inputs)
            return f"{eq.out.name} = {self._product(a, b)}"
        return self.printer.line(eq)

    def namespace(self) -> dict[str, Any]:
        np = _np()
        names: dict[str, Any] = {"np": np, "inf": math.inf, "nan": math.nan}
        names.update((key, _array_kernel(op)) for key, op in ops.by_name().items())
        names.update((name, _array_kernel(op)) for name, op in self.printer.ops_by_name().items())
        names.update(self.constants)
        names["_check"] = self._check
        names["_times"] = _times
        return names

    def _check(self, number: int, out: Any, args: tuple) -> None:
        """Raise the eager engine's error for the first element this op made non-finite."""
        np = _np()
        block_op = self.checks[number]
        arrays = np.broadcast_arrays(out, *[np.asarray(a, dtype=float) for a in args])
        # Every non-finite element, in order, not only those with finite inputs: log(-inf) is
        # an error too, and a legitimate inf (x + inf) must not hide a later element's error.
        bad = ~np.isfinite(arrays[0])
        for row in np.stack([a[bad] for a in arrays[1:]], axis=1).tolist():
            block_op.op.forward(*row)


def _times(a: Any, b: Any) -> Any:
    """a * b, but 0 where either is 0: the chain rule's product as eager `backward` takes it."""
    np = _np()
    return np.where((np.asarray(a) != 0.0) & (np.asarray(b) != 0.0), a * b, 0.0)


def _array_kernel(op: ops.Op) -> Any:
    """The op on arrays, as the generated code calls it: `relu(Z1)`."""
    if op.array is not None:
        return functools.partial(op.array, _np())
    return op.on_arrays


class BatchedFunction:
    """`f` and its gradient over a batch: `(values, grads)` for an (n, n_args) array `X`."""

    def __init__(self, program: ir.Program) -> None:
        self.program = program
        compiler, forward_end = self._compiler_for(careful=False)
        self.source = compiler.source("def run(X):", "value[:, 0], dX")
        self._compiler, self._forward_end = compiler, forward_end
        self._run = compile_source(self.source, self, compiler.namespace())["run"]
        # Compiled the first time a value or gradient comes out inf or nan.
        self._checked: Any = None
        self._careful: Any = None

    def _compiler_for(self, careful: bool) -> tuple[Compiler, int]:
        compiler = Compiler(self.program, input_grads=True, careful=careful)
        compiler.lower()
        forward_end = len(compiler.lines)
        out = self.program.outputs[0]
        compiler.lines.append(f"value = {compiler.output(out)}")
        compiler.backward([(out, "np.ones((n, 1))")] if isinstance(out, ir.Var) else [])
        if compiler.X.grad is None:
            compiler.lines.append(f"dX = np.zeros((n, {compiler.X.width}))")
        return compiler, forward_end

    def __call__(self, X: Any) -> tuple[Any, Any]:
        np = _np()
        with np.errstate(all="ignore"):
            value, dX = self._run(X)
        if not (np.isfinite(value).all() and np.isfinite(dX).all()):
            if self._checked is None:
                self._checked = self._compiler.function(
                    "def run(X):", "None", self, self._forward_end, checked=True
                )
            with np.errstate(all="ignore"):
                self._checked(X)
                if np.isnan(dX).any():  # 0 * inf in the chain rule: eager takes it as 0
                    value, dX = self._run_carefully(X)
        return value, dX

    def _run_carefully(self, X: Any) -> tuple[Any, Any]:
        if self._careful is None:
            compiler, forward_end = self._compiler_for(careful=True)
            self._careful = compiler.function("def run(X):", "value[:, 0], dX", self)
        return self._careful(X)


class TrainingStep:
    """The loss of a batch and its gradient for every parameter, from a per-sample program.

    `program` computes, for one sample, `outputs[0]` = the sample's loss and then any other
    outputs (the model's, for the accuracy), from parameters (`theta`, one flat array) and
    the sample's inputs: its features (a row of `X`) and then, if `n_labels`, its label as
    numbers (a row of `Y`). `step(theta, X, Y)` returns the mean loss over the rows, the other
    outputs as an (n, k) array, and d(mean loss)/d(theta).

    A program traced in a `batch_trace` may also read feeds and end with reports (see
    `autograd_core.batch`): each run asks the feeds for their numbers first and gives the
    reports theirs after, so a module's random masks and running estimates stay its own.
    """

    def __init__(self, program: ir.Program, n_labels: int = 0) -> None:
        compiler = Compiler(program, input_grads=False, n_labels=n_labels)
        compiler.lower()
        forward_end = len(compiler.lines)
        n_reported = sum(len(report.values) for report in program.reports)
        loss, *others = program.outputs[: len(program.outputs) - n_reported]
        reported = program.outputs[len(program.outputs) - n_reported :]
        compiler.lines.append(f"loss = {compiler.output(loss)}")
        compiler.lines.append(f"outputs = {self._joined(compiler, others, 'n')}")
        compiler.lines.append(f"reports = {self._joined(compiler, reported, '1')}[0]")
        self._outputs_end = len(compiler.lines)
        compiler.lines.append("dtheta = np.zeros_like(theta)")
        if isinstance(loss, ir.Var):
            compiler.backward([(loss, "np.full((n, 1), 1.0 / n)")])
        header = "def run(theta, X, Y=None, F=None):"
        self.source = compiler.source(header, "loss, outputs, dtheta, reports")
        self.feeds, self.reports = program.feeds, program.reports
        self._compiler, self._header, self._forward_end = compiler, header, forward_end
        # Compiled when first needed: the whole step, the forward alone (`evaluate`), and the
        # forward with a check after every op (the first time a loss comes out inf or nan).
        self._run: Any = None
        self._forward: Any = None
        self._checked: Any = None

    @staticmethod
    def _joined(compiler: Compiler, xs: list[ir.Operand], rows: str) -> str:
        """One (rows, len(xs)) array of the values xs, each a column."""
        if xs and all(compiler._batched(x) for x in xs):
            if len({compiler.where[x][0].wide for x in xs}) == 1 and (
                compiler.where[xs[0]][0].wide == (rows == "1")
            ):
                return compiler._assemble(xs)
        columns = [compiler.output(x, rows) for x in xs]
        if not columns:
            return f"np.zeros(({rows}, 0))"
        if len(columns) == 1:
            return columns[0]
        return f"np.concatenate(({', '.join(columns)}), axis=1)"

    def __call__(self, theta: Any, X: Any, Y: Any = None) -> tuple[float, Any, Any]:
        """The mean loss, the outputs and d(mean loss)/d(theta); then the reports are given."""
        if self._run is None:
            self._run = compile_source(self.source, self, self._compiler.namespace())["run"]
        F = self._feeds(len(X))
        with _np().errstate(all="ignore"):
            loss, outputs, dtheta, reports = self._run(theta, X, Y, F)
            self._check(loss, theta, X, Y, F)
        start = 0
        for report in self.reports:
            report.receive(reports[start : start + len(report.values)], len(X))
            start += len(report.values)
        return float(loss.mean()), outputs, dtheta

    def evaluate(self, theta: Any, X: Any, Y: Any = None) -> tuple[float, Any]:
        """The mean loss and the outputs, from the forward pass alone; no report is given."""
        if self._forward is None:
            self._forward = self._compiler.function(
                self._header, "loss, outputs", self, self._outputs_end
            )
        F = self._feeds(len(X))
        with _np().errstate(all="ignore"):
            loss, outputs = self._forward(theta, X, Y, F)
            self._check(loss, theta, X, Y, F)
        return float(loss.mean()), outputs

    def _feeds(self, n: int) -> Any:
        """The numbers each feed supplies for a batch of n, side by side: the array F."""
        if not self.feeds:
            return None
        np = _np()
        columns = [np.broadcast_to(feed.supply(n), (n, len(feed.values))) for feed in self.feeds]
        return np.concatenate(columns, axis=1)

    def _check(self, loss: Any, theta: Any, X: Any, Y: Any, F: Any) -> None:
        """Raise the eager error of the op that went wrong, if the loss is not finite."""
        if _np().isfinite(loss).all():
            return
        if self._checked is None:
            self._checked = self._compiler.function(
                self._header, "None", self, self._forward_end, checked=True
            )
        self._checked(theta, X, Y, F)


def compile_function(program: ir.Program) -> BatchedFunction:
    """The batched back-end for a function of n numbers (`jit(f).batched`)."""
    return BatchedFunction(program)


def _pairs(eq: ir.Equation) -> list[tuple[ir.Operand, ir.Operand]]:
    """dot's (weight, operand) pairs, each oriented with the parameter first where there is one."""
    half = len(eq.inputs) // 2
    return [
        (x, w) if isinstance(x, ir.Var) and x.kind == "param" else (w, x)
        for w, x in zip(eq.inputs[:half], eq.inputs[half:], strict=True)
    ]


def _is_const(x: ir.Operand, number: float) -> bool:
    return not isinstance(x, ir.Var) and x == number


def _take(block: Block, cols: Sequence[int] | None) -> str:
    if cols is None or block.scalar:
        return block.name
    return f"{block.name}[:, {_index_text(list(cols))}]"


def _index_text(cols: list[int]) -> str:
    """A slice where the columns are consecutive (a view), else a list (a copy)."""
    if cols == list(range(cols[0], cols[0] + len(cols))):
        return f"{cols[0]}:{cols[0] + len(cols)}"
    return repr(cols)


def _named(text: str, program: ir.Program) -> ir.Var:
    return ir.Var(text, "temp", program)


def _np() -> Any:
    import numpy

    return numpy
