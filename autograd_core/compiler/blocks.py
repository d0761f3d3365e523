"""The blocks of a lowering: where each scalar variable went, and the books of the gradients.

Run over a batch, each scalar variable of a one-sample program is a column of numbers, one
per sample, and the lowering keeps such columns side by side in blocks: (batch, width) arrays
of the block program (`autograd_core.compiler.block_program`). `Blocks` holds what the block ops
(`autograd_core.compiler.block_ops`) share while they build that program:

* where every scalar variable is (`where`: its block and column), and how to read a list of
  them as one matrix (`assemble`: a view where they lie in order, else one gather);
* the equations written so far, with fresh arrays and constants for them;
* the gradients: a block's first backward term names its gradient (`dZ1 = ...`), the next
  ones are added to it, and the term of an assembled matrix goes back to its pieces.

The walk over the program that decides which block op takes which equations is the
`Compiler`'s (`autograd_core.compiler.lowering`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import ops
from . import block_program as bp
from . import ir
from .block_program import ALL, BATCH, Array, Equation

THETA, DTHETA = Array("theta"), Array("dtheta")


@dataclass(eq=False, slots=True)
class Block:
    """A (batch, width) matrix of the block program; a (1, width) row, the same for every
    sample, when `wide` (a mean over the batch axis and what is computed from it alone); a
    number (shape ()) when `scalar`."""

    array: Array
    width: int
    scalar: bool = False
    wide: bool = False
    grad: Array | None = None  # its gradient, once some backward term reached it
    grad_is_alias: bool = False  # the gradient is another array: copy before writing into it


@dataclass(frozen=True, slots=True)
class Source:
    """Where columns of an assembled matrix come from: the columns `cols` of `block` (None:
    the whole block), at the positions `positions` of the matrix (None: all, in order)."""

    block: Block
    cols: tuple[int, ...] | None
    positions: tuple[int, ...] | None = None

    @property
    def whole(self) -> bool:
        return self.cols is None or list(self.cols) == list(range(self.block.width))


@dataclass(eq=False, slots=True)
class Assembled:
    """A (batch, width) matrix read from the columns of blocks (`Blocks.assemble`): its value
    in the program, and the blocks its gradient goes back to."""

    value: bp.Operand
    sources: list[Source]
    width: int
    wide: bool = False


@dataclass(frozen=True, slots=True)
class Operand:
    """How a block op reads one input: a whole block, some of its columns, a matrix assembled
    from columns of several blocks, a parameter, a row of parameters (one per column), a
    constant or a row of constants. `columns` is None for the whole block."""

    kind: str  # "block", "matrix", "param", "params", "const" or "array"
    block: Block | None = None
    columns: tuple[int, ...] | None = None
    index: int = 0  # the parameter's index in theta
    value: float = 0.0
    indices: tuple[int, ...] = ()  # "params": each column's parameter's index in theta
    constant: Array | None = None  # "array": the (1, width) constant
    matrix: Assembled | None = None


class _PadColumn:
    """The scalar variable standing for a column of padding (it is no variable of the trace)."""


class Blocks:
    """Where the scalar variables of a program went, and the block program being written."""

    def __init__(
        self, program: ir.Program, input_grads: bool, n_labels: int = 0, careful: bool = False
    ) -> None:
        # Sums of products written with `+` and `*` (micrograd's neuron) become dots, which the
        # lowering recognises as matrix products; equations of one depth come together.
        program = ir.fold_sums_of_products(program)
        self.depth = ir.depths(program)  # (the same for the reordered program: keyed by Var)
        program = self.program = ir.by_depth(program, self.depth)
        self.input_grads = input_grads
        # careful: each product of the chain rule is 0 where either factor is 0, as eager
        # `backward` takes it (0 * inf is 0, not nan); slower, run only where nan came out.
        self.careful = careful
        self.checks: dict[int, Any] = {}  # equation number -> the elementwise op it computes
        self.param_index = dict(zip(program.params, range(len(program.params)), strict=True))
        # The per-sample inputs: the features X, then the labels as numbers Y, then the
        # numbers modules feed the program at each run F (see `autograd_core.compiler.batch`).
        n_feeds = sum(len(feed.values) for feed in program.feeds)
        self.counts: dict[str, int] = {}
        self.X = self.input_block("X", len(program.inputs) - n_labels - n_feeds)
        others = (("Y", n_labels), ("F", n_feeds))
        self.inputs = [self.X, *(self.input_block(name, width) for name, width in others if width)]
        self.where: dict[Any, tuple[Block, int]] = {}
        self.columns: dict[int, list[Any]] = {}  # id(block) -> its variables, column by column
        columns = ((block, j) for block in self.inputs for j in range(block.width))
        for v, (block, j) in zip(program.inputs, columns, strict=True):
            self.place(v, block, j)
        self.equations: list[Equation] = []
        self.constants: list[Array] = []
        self.block_ops: list[Any] = []  # the block ops, in program order (`block_ops`)
        # The equations of one depth applying one op to as many inputs: what may be packed
        # into one array op (`Elementwise.group`, `RowReduce.group`).
        self.alike_by_key: dict[tuple, list[ir.Equation]] = {}
        for eq in program.equations:
            self.alike_by_key.setdefault(self.alike_key(eq, self.depth[eq.out]), []).append(eq)
        self.position = {id(eq): i for i, eq in enumerate(program.equations)}
        self.pads: dict[str, Block] = {}  # constant columns that pad a row reduction
        # The gradients that hold ones (the seed, and what passes it on as it is): a partial
        # times one of these is the partial itself (`block_calculus.elementwise`).
        self.ones: set[int] = set()
        self._sides: dict[int, tuple[tuple[ir.Operand, ...], tuple[ir.Operand, ...]]] = {}

    def forget_the_scalars(self) -> None:
        """Drop the books of the scalar program (where each variable went, its equations by
        depth): of no use once the block program is written, and a long program's walk would
        hold them all the while (a few hundred bytes per equation)."""
        self.where, self.columns, self.alike_by_key = {}, {}, {}
        self.position, self.depth, self._sides = {}, {}, {}

    @staticmethod
    def input_block(name: str, width: int) -> Block:
        return Block(Array(name, shape=("n", width)), width)

    def emit(
        self, out: Array | None, value: bp.Operand, update: str = "=", key: Any = None
    ) -> None:
        """Append the equation `out = value` (`+=`, through `key`; an effect for out None)."""
        self.equations.append(Equation(out, value, update, key))

    def dot_sides(self, eq: ir.Equation) -> tuple[tuple[ir.Operand, ...], tuple[ir.Operand, ...]]:
        """dot's weights and the operands they meet, in pairs, each pair oriented with the
        parameter first where there is one; worked out once per equation (a layer's are long,
        so each side is tested in C and kept as the equation's own slice where it can be)."""
        sides = self._sides.get(id(eq))
        if sides is None:
            half = len(eq.inputs) // 2
            weights, operands = eq.inputs[:half], eq.inputs[half:]
            is_param = self.param_index.__contains__
            if any(map(is_param, operands)):
                pairs = [
                    (x, w) if is_param(x) else (w, x)
                    for w, x in zip(weights, operands, strict=True)
                ]
                weights, operands = (tuple(side) for side in zip(*pairs, strict=True))
            sides = self._sides[id(eq)] = weights, operands
        return sides

    def weight_indices(self, eq: ir.Equation) -> list[int]:
        """Where each of dot's weights (`dot_sides`) lies in theta; all must be parameters."""
        return list(map(self.param_index.__getitem__, self.dot_sides(eq)[0]))

    @staticmethod
    def alike_key(eq: ir.Equation, depth: int) -> tuple:
        """Equations with one key are at one depth and apply one op with the same parameters
        (n-ary ops: any number of inputs; the others: as many)."""
        n_ary = eq.op in (ops.VSUM, ops.DOT, ops.LOGSUMEXP)
        return (depth, eq.op, eq.params, 0 if n_ary else len(eq.inputs))

    def alike(self, eq: ir.Equation) -> list[ir.Equation]:
        return self.alike_by_key[self.alike_key(eq, self.depth[eq.out])]

    def pad(self, value: float) -> Block:
        """A column holding `value` for every sample, written once: what pads a reduction's
        shorter rows (0 for a sum, -inf for a log-sum-exp). It takes no gradient."""
        key = repr(value)
        if key not in self.pads:
            block = self.pads[key] = self.block("pad", 1)
            self.emit(block.array, bp.full((BATCH, 1), value))
            self.place(_PadColumn(), block, 0)
        return self.pads[key]

    def pad_var(self, value: float) -> Any:
        """The variable standing for the column `pad(value)` (what `assemble` reads)."""
        return self.columns_of(self.pad(value))[0]

    # -- arrays ----------------------------------------------------------------------------

    def fresh(self, kind: str, shape: tuple | None = None, **fields: Any) -> Array:
        """A new array of the kind, numbered after the last one."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return Array(kind, self.counts[kind], shape, **fields)

    def block(self, kind: str, width: int, scalar: bool = False, wide: bool = False) -> Block:
        shape = () if scalar else (1 if wide else "n", width)
        return Block(self.fresh(kind, shape), width, scalar, wide)

    def constant(self, kind: str, value: Any) -> Array:
        """A new constant of the program (an index array)."""
        array = self.fresh(kind, tuple(value.shape), value=value)
        self.constants.append(array)
        return array

    # -- where the scalar variables are ----------------------------------------------------

    def place(self, v: Any, block: Block, j: int) -> None:
        """Record that variable v is column j of block (both ways, so neither is a search)."""
        self.where[v] = (block, j)
        self.columns.setdefault(id(block), [None] * block.width)[j] = v

    def columns_of(self, block: Block) -> list[Any]:
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

    def assemble(self, xs: Sequence[Any]) -> Assembled:
        """The (batch, len(xs)) matrix whose columns are the variables xs: a block or a slice
        of one where the columns lie so, a few runs side by side, else one gather from the
        blocks they come from (`Source`s, which its gradient is sent back to)."""
        by_block: dict[int, tuple[Block, list[int], list[int]]] = {}
        runs: list[Block] = []
        for position, x in enumerate(xs):
            block, j = self.where[x]
            cols, positions = by_block.setdefault(id(block), (block, [], []))[1:]
            cols.append(j)
            positions.append(position)
            if not runs or runs[-1] is not block:
                runs.append(block)
        wide = runs[0].wide
        if len(by_block) == 1:
            ((block, cols, _),) = by_block.values()
            whole = cols == list(range(block.width))
            source = Source(block, None if whole else tuple(cols))
            value = self.columns_value(block, source.cols)
            if not (whole or consecutive(cols)):  # gathered once, however often it is read
                gathered = self.fresh("A", ("n", len(xs)))
                self.emit(gathered, value)
                value = gathered
            return Assembled(value, [source], len(xs), wide)
        sources = [
            Source(block, tuple(cols), tuple(positions))
            for block, cols, positions in by_block.values()
        ]
        matrix = self.fresh("A", ("n", len(xs)))
        if len(runs) <= 4 and len(runs) == len(by_block):  # side by side: (X, H1)
            parts = [self.columns_value(s.block, None if s.whole else s.cols) for s in sources]
            self.emit(matrix, bp.concatenate(parts))
        else:  # one gather from the blocks side by side
            offsets, start = {}, 0
            for s in sources:
                offsets[id(s.block)], start = start, start + s.block.width
            numbers = [offsets[id(self.where[x][0])] + self.where[x][1] for x in xs]
            joined = bp.concatenate([s.block.array for s in sources])
            if numbers == list(range(start)):  # every column, in order: no gather
                self.emit(matrix, joined)
            else:
                self.emit(
                    matrix, bp.columns(joined, self.constant("gather", numpy().array(numbers)))
                )
        return Assembled(matrix, sources, len(xs), wide)

    def columns_value(self, block: Block, cols: Sequence[int] | None) -> bp.Operand:
        """The columns `cols` of `block` (the whole block for None): a slice where they are
        consecutive, a short list written out, else an index constant."""
        if cols is None or block.scalar:
            return block.array
        return bp.columns(block.array, self.index_key(cols))

    def index_key(self, cols: Sequence[int]) -> Any:
        if consecutive(cols) or len(cols) <= 8:
            return index_item(list(cols))
        return self.constant("cols", numpy().array(cols))

    def value_of(self, o: Operand) -> bp.Operand:
        """The operand's value in the block program."""
        if o.kind == "const":
            return o.value
        if o.kind == "param":
            return bp.index(THETA, o.index)
        if o.kind == "params":
            return bp.index(THETA, None, self.theta_index(o.indices))
        if o.kind == "array":
            return o.constant
        if o.kind == "matrix":
            return o.matrix.value
        return self.columns_value(o.block, o.columns)

    def theta_index(self, indices: tuple[int, ...]) -> Any:
        """Where a row of parameters lies in theta: a slice where it can, else an index array."""
        if consecutive(indices):
            return index_item(list(indices))
        return self.constant("index", numpy().array(indices))

    # -- gradients ---------------------------------------------------------------------------

    def add_grad(self, o: Operand, term: bp.Operand, out: Block) -> None:
        """Add the backward term (shaped as `out`) into the gradient of operand `o`."""
        if o.kind in ("const", "array") or (isinstance(term, float) and term == 0.0):
            return
        if o.kind == "block" and not self.needs_grad(o.block):
            return
        if o.kind == "param":
            summed = term if out.scalar else bp.reduce("sum", term)
            self.emit(DTHETA, summed, "+=", (o.index,))
            return
        if o.kind == "params":  # one parameter per column: sum over the samples
            summed = bp.reduce("sum", term, 0)
            if len(set(o.indices)) == len(o.indices):
                self.emit(DTHETA, summed, "+=", (self.theta_index(o.indices),))
            else:  # a parameter read by two columns gets both terms
                index = self.constant("index", numpy().array(o.indices))
                self.emit(None, bp.expr("add_at", DTHETA, index, summed))
            return
        if o.kind == "matrix":  # columns assembled from blocks: each piece gets its part
            matrix = o.matrix
            if out.scalar or out.width != matrix.width:
                term = bp.broadcast(term, 1 if matrix.wide else BATCH, matrix.width)
            elif matrix.wide and not out.wide:
                term = bp.reduce("sum", term, 0, keepdims=True)
            self.add_to_pieces(matrix, term)
            return
        block = o.block
        if block.scalar:
            summed = term if out.scalar else bp.reduce("sum", term)
            self.accumulate(block, summed, alias=False)
            return
        if out.scalar:
            term = bp.full((1 if block.wide else BATCH, 1), term)
        elif block.wide and not out.wide:  # a row the same for every sample
            term = bp.reduce("sum", term, 0, keepdims=True)
        cols = o.columns
        if cols is not None and list(cols) == list(range(block.width)):
            cols = None  # every column, in order: the whole block
        if cols is None or block.width == 1:
            if out.width != block.width:
                term = bp.reduce("sum", term, 1, keepdims=True)
            self.accumulate(block, term)
            return
        if len(cols) == 1 and out.width > 1:
            term = bp.reduce("sum", term, 1, keepdims=True)
        self.own(block)
        if len(set(cols)) < len(cols):  # `a[:, [0, 0]] += t` would add to column 0 only once
            # one `np.bincount` over the flattened positions, ten times faster than np.add.at
            index = self.constant("cols", numpy().array(cols))
            self.emit(None, bp.expr("scatter_add", block.grad, index, term))
            return
        negated = _negated(term)
        key = (ALL, self.index_key(cols))
        if negated is None:
            self.emit(block.grad, term, "+=", key)
        else:  # `dX[:, 1:2] -= t`, not `+= -t`
            self.emit(block.grad, negated, "-=", key)

    def accumulate(self, block: Block, term: bp.Operand, alias: bool = True) -> None:
        """Add `term`, the gradient of the whole block, to it (its first term names it).
        `alias`: the term may be another array or a view of one (copied before a write)."""
        if block.grad is None:
            block.grad = Array("d", of=block.array, shape=block.array.shape)
            self.emit(block.grad, term)
            block.grad_is_alias = alias
            if id(term) in self.ones or _is_ones(term):
                self.ones.add(id(block.grad))
        else:
            negated = _negated(term)
            total = bp.add(block.grad, term) if negated is None else bp.sub(block.grad, negated)
            self.emit(block.grad, total)
            block.grad_is_alias = False
            self.ones.discard(id(block.grad))

    def own(self, block: Block) -> None:
        """Make sure the block's gradient is an array of its own that may be written in place."""
        if block.grad is None:
            block.grad = Array("d", of=block.array, shape=block.array.shape)
            self.emit(block.grad, bp.zeros(1 if block.wide else BATCH, block.width))
        elif block.grad_is_alias:
            self.emit(block.grad, bp.expr("copy", block.grad))
        block.grad_is_alias = False
        self.ones.discard(id(block.grad))

    def add_to_pieces(self, matrix: Assembled, term: bp.Operand) -> None:
        """Send the gradient of an assembled matrix back to the blocks it was taken from."""
        sources = self.sources_wanting_grad(matrix)
        if not sources:
            return
        part = term
        if len(matrix.sources) > 1:  # computed once, then each source takes its columns
            part = self.fresh("dA", ("n", matrix.width))
            self.emit(part, term)
        for s in sources:
            piece = part
            if s.positions is not None:
                piece = bp.columns(part, self.index_key(s.positions))
            n_cols = s.block.width if s.cols is None else len(s.cols)
            self.add_grad(Operand("block", s.block, s.cols), piece, shaped(n_cols))

    def sources_wanting_grad(self, matrix: Assembled) -> list[Source]:
        return [s for s in matrix.sources if self.needs_grad(s.block)]

    def wanted(self, o: Operand) -> bool:
        """Whether a gradient for this operand is of any use."""
        if o.kind in ("const", "array"):
            return False
        if o.kind == "matrix":
            return bool(self.sources_wanting_grad(o.matrix))
        return o.kind != "block" or self.needs_grad(o.block)

    def needs_grad(self, block: Block) -> bool:
        """Whether the block's gradient is of any use: not for the inputs of a training step,
        nor for the padding of a reduction."""
        if block.array.kind == "pad":  # (`pad` makes these)
            return False
        return self.input_grads or block not in self.inputs

    def product(self, a: bp.Operand, b: bp.Operand) -> bp.Expr:
        """a * b, in careful mode 0 where either is 0 (see `careful`)."""
        return bp.times(a, b, self.careful)


def _negated(term: bp.Operand) -> bp.Operand | None:
    """t where the term is -t (a partial of -1 times the gradient), else None."""
    if isinstance(term, bp.Expr) and term.op == "map" and term.params[0] is ops.NEG:
        return term.args[0]
    return None


def _is_ones(term: bp.Operand) -> bool:
    """The term is `np.full(shape, 1.0)`: a seed of ones."""
    return isinstance(term, bp.Expr) and term.op == "full" and is_number(term.args[0], 1.0)


def shaped(width: int) -> Block:
    """What a backward term of `width` columns is shaped as, for `add_grad`."""
    return Block(Array("_", shape=("n", width)), width)


def consecutive(cols: Sequence[int]) -> bool:
    """The columns follow one another, as a slice takes them (so indexing gives a view)."""
    return list(cols) == list(range(cols[0], cols[0] + len(cols)))


def index_item(cols: list[int]) -> Any:
    """A slice where the columns are consecutive (a view), else a list (a copy)."""
    if consecutive(cols):
        return (cols[0], cols[0] + len(cols))
    return list(cols)


def is_number(x: Any, number: float) -> bool:
    return not isinstance(x, (ir.Var, Array, bp.Expr)) and x == number


def numpy() -> Any:
    """NumPy, imported when first needed: the core engine runs without it."""
    import numpy

    return numpy
