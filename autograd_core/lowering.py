"""Lowering: a traced per-sample program to NumPy source that runs it over a whole batch.

The `Compiler` walks the program's equations once, in order, and groups them into the block
ops of `autograd_core.block_ops` (matrix products, gathered convolutions, row reductions,
elementwise ops, means over the batch), each of which prints its forward lines. It records
where every scalar variable went (`where`: its block and column), so a later equation reads it
from there. Then it walks the block ops backwards: each prints the lines adding its terms to
its inputs' gradients, and the compiler keeps the books of those gradients (a block's first
term names its gradient; the next ones are added to it).

Nothing here knows about `nn`: a hand-written network of `dot` neurons is recognised the same.
The lines become one function `run` (`source`), compiled with the op table's array kernels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from . import ir, ops
from .block_ops import (
    Block,
    BlockOp,
    Convolution,
    Elementwise,
    Gather,
    MatMul,
    Operand,
    Pick,
    Pieces,
    RowReduce,
    Source,
    WindowSum,
    consecutive,
    dot_pairs,
    index_text,
    named,
    numpy,
)
from .codegen import Printer, compile_source


class Compiler:
    """Lowers a forward scalar program to block ops, then prints forward and backward code."""

    def __init__(
        self, program: ir.Program, input_grads: bool, n_labels: int = 0, careful: bool = False
    ) -> None:
        # Sums of products written with `+` and `*` (micrograd's neuron) become dots, which the
        # lowering below recognises as matrix products; equations of one depth come together.
        program = ir.fold_sums_of_products(program)
        self.depth = ir.depths(program)  # (the same for the reordered program: keyed by Var)
        program = self.program = ir.by_depth(program, self.depth)
        self.input_grads = input_grads
        # careful: each product of the chain rule is 0 where either factor is 0, as eager
        # `backward` takes it (0 * inf is 0, not nan); slower, run only where nan came out.
        self.careful = careful
        self.pieces: dict[str, Pieces] = {}
        self.checks: dict[int, Elementwise] = {}  # line number -> the elementwise op it computes
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
            self.place(v, block, j)
        self.block_ops: list[BlockOp] = []
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self.printer = Printer()
        self.scratch = ir.Program()
        self.constants: dict[str, Any] = {}
        # The equations of one depth applying one op to as many inputs: what may be packed
        # into one array op (`Elementwise.group`, `RowReduce.group`).
        self.alike_by_key: dict[tuple, list[ir.Equation]] = {}
        for eq in program.equations:
            self.alike_by_key.setdefault(self.alike_key(eq, self.depth[eq.out]), []).append(eq)
        self.position = {id(eq): i for i, eq in enumerate(program.equations)}
        self.pads: dict[str, Block] = {}  # constant columns that pad a row reduction
        self._pairs: dict[int, list[tuple[ir.Operand, ir.Operand]]] = {}

    def dot_pairs(self, eq: ir.Equation) -> list[tuple[ir.Operand, ir.Operand]]:
        """`block_ops.dot_pairs(eq)`, worked out once per equation (a layer's are long)."""
        pairs = self._pairs.get(id(eq))
        if pairs is None:
            pairs = self._pairs[id(eq)] = dot_pairs(eq)
        return pairs

    @staticmethod
    def alike_key(eq: ir.Equation, depth: int) -> tuple:
        """Equations with one key are at one depth and apply one op (n-ary ops: any number of
        inputs; the others: as many)."""
        n_ary = eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP)
        return (depth, eq.op, 0 if n_ary else len(eq.inputs))

    def alike(self, eq: ir.Equation) -> list[ir.Equation]:
        return self.alike_by_key[self.alike_key(eq, self.depth[eq.out])]

    def pad(self, value: float) -> Block:
        """A column holding `value` for every sample, printed once: what pads a reduction's
        shorter rows (0 for a sum, -inf for a log-sum-exp). It takes no gradient."""
        text = self.printer.operand(value)
        if text not in self.pads:
            block = self.pads[text] = Block(self.fresh("pad"), 1)
            self.lines.append(f"{block.name} = np.full((n, 1), {text})")
            self.place(ir.Var(block.name, "temp", self.scratch), block, 0)
        return self.pads[text]

    def pad_var(self, value: float) -> ir.Var:
        """The variable standing for the column `pad(value)` (what `assemble` reads)."""
        return self.columns_of(self.pad(value))[0]

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
        """Group the equations, in order, into block ops, each printing its forward lines: the
        windows of a convolution, a layer of dot neurons, a row reduction, else one op of the
        table over as many columns of a block as apply it alike."""
        done: set[int] = set()
        matmul_groups = MatMul.groups(self)
        convolutions = Convolution.find(self, matmul_groups)
        sums = WindowSum.candidates(self)
        for eq in self.program.equations:
            if id(eq) in done:
                continue
            windows = convolutions.get(id(eq))
            group = matmul_groups.get(id(eq))
            layout = Convolution.layout_of(self, windows) if windows is not None else None
            if layout is not None:
                Convolution.lower(self, windows, layout)
                done.update(id(member) for window in windows for member in window)
                continue
            if group is None and eq.op is ops.VSUM:
                group = WindowSum.lower(self, eq, sums, done)
                if group is not None:
                    done.update(id(member) for member in group)
                    continue
            if group is None and eq.op is ops.TAKE:
                group = Gather.group(self, eq, done)
                if group is not None:
                    Gather.lower(self, group)
                    done.update(id(member) for member in group)
                    continue
                group = Pick.group(self, eq, done)
                if group:
                    Pick.lower(self, group)
                    done.update(id(member) for member in group)
                    continue
                group = None
            if group is not None:
                MatMul.lower(self, group)
            elif eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP) and (
                group := RowReduce.group(self, eq, done)
            ):
                RowReduce.lower(self, group)
            else:
                group = Elementwise.group(self, eq, done)
                Elementwise.lower(self, group)
            done.update(id(member) for member in (group or [eq]))

    def place(self, v: ir.Var, block: Block, j: int) -> None:
        """Record that variable v is column j of block (both ways, so neither is a search)."""
        self.where[v] = (block, j)
        self.columns.setdefault(id(block), [None] * block.width)[j] = v

    def columns_of(self, block: Block) -> list[ir.Var]:
        return self.columns[id(block)]

    def operand(self, x: ir.Operand) -> Operand:
        if not isinstance(x, ir.Var):
            return Operand("const", value=x)
        if x in self.param_index:
            return Operand("param", index=self.param_index[x])
        block, j = self.where[x]
        if block.scalar or block.width == 1:
            return Operand("block", block)
        return Operand("block", block, (j,))

    def is_batched(self, x: ir.Operand) -> bool:
        """x is a column of a block: per sample, or a row the same for every sample."""
        if not isinstance(x, ir.Var) or x in self.param_index:
            return False
        return not self.where[x][0].scalar

    def per_sample(self, x: ir.Operand) -> bool:
        """x is a column of a (batch, width) block: what matrix products and reductions read."""
        return self.is_batched(x) and not self.where[x][0].wide

    def assemble(self, xs: Sequence[ir.Var]) -> str:
        """An expression for the (batch, len(xs)) matrix whose columns are the variables xs:
        a block or a slice of one where the columns lie so, a few runs side by side, else one
        gather from the blocks they come from (`Source`s, which its gradient is sent back to).
        """
        by_block: dict[int, tuple[Block, list[int], list[int]]] = {}
        runs: list[Block] = []
        for position, x in enumerate(xs):
            block, j = self.where[x]
            cols, positions = by_block.setdefault(id(block), (block, [], []))[1:]
            cols.append(j)
            positions.append(position)
            if not runs or runs[-1] is not block:
                runs.append(block)
        if len(by_block) == 1:
            ((block, cols, _),) = by_block.values()
            whole = cols == list(range(block.width))
            source = Source(block, None if whole else tuple(cols))
            if whole or consecutive(cols):
                name = self.columns_text(block, source.cols)
            else:  # gathered once, however often it is read
                name = self.fresh("A")
                self.lines.append(f"{name} = {self.columns_text(block, cols)}")
            self.pieces[name] = [source]
            return name
        sources = [
            Source(block, tuple(cols), tuple(positions))
            for block, cols, positions in by_block.values()
        ]
        name = self.fresh("A")
        if len(runs) <= 4 and len(runs) == len(by_block):  # side by side: (X, H1)
            texts = [self.columns_text(s.block, None if s.whole else s.cols) for s in sources]
            self.lines.append(f"{name} = np.concatenate(({', '.join(texts)}), axis=1)")
        else:  # one gather from the blocks side by side
            offsets, start = {}, 0
            for s in sources:
                offsets[id(s.block)], start = start, start + s.block.width
            index = [offsets[id(self.where[x][0])] + self.where[x][1] for x in xs]
            blocks = ", ".join(s.block.name for s in sources)
            gather = self.constant("gather", numpy().array(index))
            self.lines.append(f"{name} = np.concatenate(({blocks}), axis=1)[:, {gather}]")
        self.pieces[name] = sources
        return name

    def columns_text(self, block: Block, cols: Sequence[int] | None) -> str:
        """An expression for the columns `cols` of `block` (the whole block for None): a slice
        where they are consecutive, a short list written out, else an index constant."""
        if cols is None or block.scalar:
            return block.name
        return f"{block.name}[:, {self.index_text(cols)}]"

    def index_text(self, cols: Sequence[int]) -> str:
        if consecutive(cols) or len(cols) <= 8:
            return index_text(list(cols))
        return self.constant("cols", numpy().array(cols))

    def text(self, o: Operand) -> Any:
        """A Var standing for the operand's expression (printed by its name)."""
        if o.kind == "const":
            return o.value
        if o.kind == "param":
            return named(f"theta[{o.index}]", self.scratch)
        if o.kind == "params":
            return named(f"theta[None, {self.theta_index(o.indices)}]", self.scratch)
        if o.kind == "array":
            return named(o.name, self.scratch)
        return named(self.columns_text(o.block, o.columns), self.scratch)

    def theta_index(self, indices: tuple[int, ...]) -> str:
        """Where a row of parameters lies in theta: a slice where it can, else an index array."""
        if consecutive(indices):
            return index_text(list(indices))
        return self.constant("index", numpy().array(indices))

    # -- backward ---------------------------------------------------------------------------

    def backward(self, seeds: list[tuple[ir.Var, str]]) -> None:
        """Seed the gradients of `seeds`, then let each block op, last first, print its own
        backward lines; an op whose result no gradient reached has none."""
        for var, seed in seeds:
            self.add_grad(self.operand(var), named(seed, self.scratch), Block("_", 1))
        for block_op in reversed(self.block_ops):
            if block_op.out.grad is not None:
                block_op.backward(self)

    def add_grad(self, o: Operand, term: Any, out: Block) -> None:
        """Add the backward term (shaped as `out`) into the gradient of operand `o`."""
        if o.kind in ("const", "array") or (isinstance(term, float) and term == 0.0):
            return
        if o.kind == "block" and not self.needs_grad(o.block):
            return
        term_text = self.printer.operand(term)
        if o.kind == "param":
            summed = term_text if out.scalar else f"({term_text}).sum()"
            self.lines.append(f"dtheta[{o.index}] += {summed}")
            return
        if o.kind == "params":  # one parameter per column: sum over the samples
            if len(set(o.indices)) == len(o.indices):
                index = self.theta_index(o.indices)
                self.lines.append(f"dtheta[{index}] += ({term_text}).sum(0)")
            else:  # a parameter read by two columns gets both terms
                index = self.constant("index", numpy().array(o.indices))
                self.lines.append(f"np.add.at(dtheta, {index}, ({term_text}).sum(0))")
            return
        if o.kind == "matrix":  # columns assembled from blocks: each piece gets its part
            shape = f"({'1' if o.block.wide else 'n'}, {o.block.width})"
            if out.scalar or out.width != o.block.width:
                term_text = f"np.broadcast_to({term_text}, {shape})"
            elif o.block.wide and not out.wide:
                term_text = f"({term_text}).sum(0, keepdims=True)"
            self.add_to_pieces(o.block.name, term_text)
            return
        block = o.block
        if block.scalar:
            summed = term_text if out.scalar else f"({term_text}).sum()"
            self.accumulate(block, summed, alias=False)
            return
        if out.scalar:
            term_text = f"np.full(({'1' if block.wide else 'n'}, 1), {term_text})"
        elif block.wide and not out.wide:  # a row the same for every sample: sum the samples
            term_text = f"({term_text}).sum(0, keepdims=True)"
        cols = o.columns
        if cols is None or block.width == 1:
            if out.width != block.width:
                term_text = f"({term_text}).sum(1, keepdims=True)"
            self.accumulate(block, term_text, alias=isinstance(term, ir.Var))
            return
        if len(cols) == 1 and out.width > 1:
            term_text = f"({term_text}).sum(1, keepdims=True)"
        self.own(block)
        if len(set(cols)) < len(cols):  # `a[:, [0, 0]] += t` would add to column 0 only once
            self.add_repeated(block, cols, term_text)
            return
        self.lines.append(f"{block.grad}[:, {self.index_text(cols)}] += {term_text}")

    def add_repeated(self, block: Block, cols: Sequence[int], term_text: str) -> None:
        """grad[:, cols] += term where some column is in cols more than once (`+=` through the
        index would add to it once): one `np.bincount` over the flattened positions, ten times
        faster than `np.add.at`."""
        index = self.constant("cols", numpy().array(cols))
        self.lines.append(f"_scatter_add({block.grad}, {index}, {term_text})")

    def accumulate(self, block: Block, text: str, alias: bool) -> None:
        """Add `text`, the gradient of the whole block, to it (its first term names it)."""
        if block.grad is None and text == "d" + block.name:  # the line made it under its name
            block.grad, block.grad_is_alias = text, False
        elif block.grad is None:
            block.grad = "d" + block.name
            self.lines.append(f"{block.grad} = {text}")
            block.grad_is_alias = alias
        else:
            self.lines.append(f"{block.grad} = {block.grad} + {text}")
            block.grad_is_alias = False

    def own(self, block: Block) -> None:
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
        sources = self.sources_wanting_grad(name)
        if not sources:
            return
        if len(self.pieces[name]) == 1:
            part = grad_text
        else:  # computed once, then each source takes its columns
            part = self.fresh("dA")
            self.lines.append(f"{part} = {grad_text}")
        for s in sources:
            n_cols = s.block.width if s.cols is None else len(s.cols)
            term = part
            if s.positions is not None:
                term = f"{part}[:, {self.index_text(s.positions)}]"
            self.add_grad(
                Operand("block", s.block, s.cols), named(term, self.scratch), Block("_", n_cols)
            )

    def sources_wanting_grad(self, name: str) -> list[Source]:
        return [s for s in self.pieces[name] if self.needs_grad(s.block)]

    def wanted(self, o: Operand) -> bool:
        """Whether a gradient for this operand is of any use."""
        if o.kind in ("const", "array"):
            return False
        if o.kind == "matrix":
            return bool(self.sources_wanting_grad(o.block.name))
        return o.kind != "block" or self.needs_grad(o.block)

    def needs_grad(self, block: Block) -> bool:
        """Whether the block's gradient is of any use: not for the inputs of a training step,
        nor for the padding of a reduction."""
        if any(block is pad for pad in self.pads.values()):
            return False
        return self.input_grads or block not in self.inputs

    def product(self, a: str, b: str) -> str:
        """a * b, in careful mode 0 where either is 0 (see `careful`)."""
        return f"_times({a}, {b})" if self.careful else f"({a} * {b})"

    # -- the program's results --------------------------------------------------------------

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
        column = self.columns_text(block, None if block.width == 1 else (j,))
        return f"np.broadcast_to({column}, (n, 1))" if block.wide and rows == "n" else column

    # -- the generated function -------------------------------------------------------------

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

    def namespace(self) -> dict[str, Any]:
        np = numpy()
        names: dict[str, Any] = {"np": np, "inf": math.inf, "nan": math.nan}
        names.update((name, _array_kernel(op)) for name, op in self.printer.ops_by_name().items())
        names.update(self.constants)
        names["_check"] = self._check
        names["_times"] = _times
        names["_row_indices"] = _row_indices
        names["_scatter_add"] = _scatter_add
        names["_scatter_rows"] = _scatter_rows
        return names

    def _check(self, number: int, out: Any, args: tuple) -> None:
        """Raise the eager engine's error for the first element this op made non-finite."""
        np = numpy()
        block_op = self.checks[number]
        arrays = np.broadcast_arrays(out, *[np.asarray(a, dtype=float) for a in args])
        # Every non-finite element, in order, not only those with finite inputs: log(-inf) is
        # an error too, and a legitimate inf (x + inf) must not hide a later element's error.
        bad = ~np.isfinite(arrays[0])
        for row in np.stack([a[bad] for a in arrays[1:]], axis=1).tolist():
            block_op.op.forward(*row)


def _times(a: Any, b: Any) -> Any:
    """a * b, but 0 where either is 0: the chain rule's product as eager `backward` takes it."""
    np = numpy()
    return np.where((np.asarray(a) != 0.0) & (np.asarray(b) != 0.0), a * b, 0.0)


def _row_indices(x: Any, n_rows: int) -> Any:
    """The samples' indices x, (n,) or (n, Q), as row numbers of a table of n_rows rows;
    IndexError (as `take` raises on floats) for one that is not a whole number in range."""
    np = numpy()
    return ops.row_indices(np, np.asarray(x), n_rows)


def _scatter_add(grad: Any, cols: Any, term: Any) -> None:
    """grad[:, cols] += term for a (samples, width) gradient, an array of columns (of any
    shape) that may repeat, and a term shaped (samples, *cols.shape) or broadcast to it: every
    repeat counts, as with `np.add.at`, but as one `np.bincount` of the flattened positions."""
    np = numpy()
    n, width = grad.shape
    rows = np.arange(n).reshape(-1, *[1] * cols.ndim) * width
    weights = np.broadcast_to(term, (n, *cols.shape)).ravel()
    grad += np.bincount((rows + cols).ravel(), weights, n * width).reshape(n, width)


def _scatter_rows(grad: Any, index: Any, term: Any) -> None:
    """grad[index[s]] += term[s] for every sample s (rows read twice get both): the gradient
    of a table's rows gathered by `index`, as one `np.bincount`."""
    np = numpy()
    n_rows, width = grad.shape
    flat = (index[..., None] * width + np.arange(width)).ravel()
    grad += np.bincount(flat, term.ravel(), n_rows * width).reshape(n_rows, width)


def _array_kernel(op: ops.Op) -> Any:
    """The op on arrays, as the generated code calls it: `relu(Z1)`."""
    if op.array is not None:
        return functools.partial(op.array, numpy())
    return op.on_arrays
