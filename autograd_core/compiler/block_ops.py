"""The block ops: a traced sample's equations grouped into ops on (batch, width) matrices.

A traced program describes ONE sample. Run over a batch, each scalar variable becomes a column
of numbers, one per sample, and the program's structure shows which columns belong together:

* `dot` equations that read the same per-sample operands with different parameter rows are the
  neurons of one layer: together they are one matrix product, `Z = A @ W.T + b`, whose
  backward is `dW = dZ.T @ A` and `dA = dZ @ W` (`MatMul`);
* layers that share one weight matrix over different windows of the same block are the output
  positions of a convolution: one gathered product for every window (`Convolution`);
* the same op applied to every column of such a block (an activation over a layer) is one
  elementwise op on a (batch, width) matrix; its backward is the op table's own partial rule,
  evaluated on the blocks (`Elementwise`);
* `vsum`s over windows of one block (an average pool's) are one gathered sum (`WindowSum`);
* a `vsum` or `dot` over a whole block is a row reduction (`RowReduce`), and `batch_mean` of a
  block the mean of each column over the batch (`BatchMean`);
* anything else is one array op per scalar equation over the batch (a (batch, 1) column), so
  every program runs, whatever its shape; recognition only makes it faster.

Each kind of op is a class that builds itself from equations (`lower`, which writes its
forward equations of the block program, `autograd_core.compiler.block_program`) and keeps what its
backward rule reads; the rules are one table, `autograd_core.compiler.block_calculus`. Where each
scalar went and the books of the gradients are `Blocks`' (`autograd_core.compiler.blocks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from ..engine import ops
from . import block_program as bp
from . import ir
from .block_program import ALL, BATCH, Array
from .blocks import (
    DTHETA,
    THETA,
    Assembled,
    Block,
    Blocks,
    Operand,
    index_item,
    is_number,
    numpy,
)


@dataclass(eq=False, slots=True)
class BlockOp:
    """One op of the block program, computing the block `out`."""

    out: Block


# ------------------------------------------------------------------------------------------
# The parameters of a layer: a matrix read from theta


@dataclass(frozen=True)
class ParameterMatrix:
    """A layer's parameters as a matrix of the program, one row per neuron: a view of theta
    where its rows lie in order there, else gathered by an index constant."""

    array: Array
    grad_source: bp.Operand  # what its gradient starts as: the same view of dtheta, or zeros
    index: Array | None  # the index constant it was gathered with; None for a view

    @classmethod
    def read(cls, blocks: Blocks, rows: list[list[int]], array: Array) -> ParameterMatrix:
        """`array = theta[...]` for the parameters at the indices `rows` of theta."""
        np = numpy()
        index = np.array(rows)
        start = int(index[0, 0])
        gathered = None
        array.shape = index.shape
        if np.array_equal(index, start + np.arange(index.size).reshape(index.shape)):
            stop = start + index.size
            source = bp.reshape(bp.index(THETA, (start, stop)), *index.shape)
            grad_source = bp.reshape(bp.index(DTHETA, (start, stop)), *index.shape)
        else:
            gathered = blocks.constant("index", index)
            source, grad_source = bp.index(THETA, gathered), bp.zeros(*index.shape)
        blocks.emit(array, source)
        return cls(array, grad_source, gathered)

    @property
    def grad(self) -> Array:
        return Array("d", of=self.array, shape=self.array.shape)

    def start_grad(self, blocks: Blocks) -> Array:
        """`dP = ...`: a view of dtheta, added to in place, or zeros to scatter later."""
        grad = self.grad
        blocks.emit(grad, self.grad_source)
        return grad

    def scatter_grad(self, blocks: Blocks, grad: Array) -> None:
        """Add the gradient of a gathered matrix to dtheta (a view's is there already)."""
        if self.index is not None:
            blocks.emit(None, bp.expr("add_at", DTHETA, self.index, grad))


# ------------------------------------------------------------------------------------------
# A layer of dot neurons: one matrix product


@dataclass(eq=False)
class MatMul(BlockOp):
    """`Z = A @ W.T + b`: dot neurons reading the same per-sample operands A, one per row of
    parameters."""

    params: ParameterMatrix  # P, the layer's parameters [W | b] (see `lower`)
    W: Array  # the columns of P that meet A (P itself when there is no constant column)
    b: Array | None  # the column of P that meets the constant 1.0, if that is the only constant
    A: Assembled  # the (batch, k) matrix of operands
    batched_cols: list[int]  # where A's columns lie among each neuron's operands
    const_cols: list[int]  # where the constants lie
    consts: list[float]

    @staticmethod
    def groups(blocks: Blocks) -> dict[int, list[ir.Equation]]:
        """dot equations pairing parameters with the same per-sample operands, by first member."""
        param_index = blocks.param_index
        is_param = param_index.__contains__
        by_key: dict[tuple, list[ir.Equation]] = {}
        for eq in blocks.program.equations:
            if eq.op is not ops.DOT:
                continue
            # (each test in C: a layer's neuron has a thousand pairs)
            weights, operands = blocks.dot_sides(eq)
            if (
                all(map(is_param, weights))
                and not any(map(is_param, operands))
                and any(map(isinstance, operands, repeat(ir.Var)))
            ):
                by_key.setdefault(operands, []).append(eq)  # a constant keys by its number
        # Keyed by the first in program order; the neurons in the order of their parameters, so
        # that copies of one layer (over windows, over positions) list them alike.
        return {
            id(group[0]): sorted(group, key=lambda eq: param_index[_first_weight(eq)])
            for group in by_key.values()
        }

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> None:
        """`Z = A @ W.T + b` for a group of dot neurons; one elementwise op per neuron instead
        if one of their operands is a scalar of the program."""
        operands = list(blocks.dot_sides(group[0])[1])
        rows = [blocks.weight_indices(eq) for eq in group]
        batched_cols = [k for k, x in enumerate(operands) if blocks.per_sample(x)]
        const_cols = [k for k, x in enumerate(operands) if not isinstance(x, ir.Var)]
        other_cols = [k for k in range(len(operands)) if k not in batched_cols + const_cols]
        if other_cols:  # a per-sample operand that is a scalar of the program: no matmul
            for eq in group:
                Elementwise.lower(blocks, [eq])
            return
        Z = blocks.block("Z", len(group))
        number = Z.array.number
        consts = [operands[k] for k in const_cols]
        # A layer's parameters P are [W | b]: the weights meet the inputs, the bias meets 1.0.
        whole = batched_cols == list(range(len(operands)))
        params = ParameterMatrix.read(blocks, rows, Array("W" if whole else "P", number))
        P = params.array
        W, b = P, None
        if not whole:
            W = Array("W", number, (len(group), len(batched_cols)))
            blocks.emit(W, bp.columns(P, index_item(batched_cols)))
        if consts == [1.0]:
            b = Array("b", number, (len(group),))
            blocks.emit(b, bp.columns(P, const_cols[0]))
        A = blocks.assemble([operands[k] for k in batched_cols])
        value: bp.Operand = bp.matmul(A.value, bp.transpose(W))
        if b is not None:
            value = bp.add(value, b)
        elif const_cols:
            c = blocks.constant("c", numpy().array(consts))
            value = bp.add(value, bp.matmul(bp.columns(P, index_item(const_cols)), c))
        blocks.emit(Z.array, value)
        for j, eq in enumerate(group):
            blocks.place(eq.out, Z, j)
        blocks.block_ops.append(cls(Z, params, W, b, A, batched_cols, const_cols, consts))


# ------------------------------------------------------------------------------------------
# One weight matrix over the windows of a block: a convolution


@dataclass(frozen=True)
class WindowLayout:
    """Where each window's operands lie, when the windows fit one gathered product."""

    source: Block  # the block every window reads
    gather: Any  # (windows, k) column indices into source; source.width reads the zeros
    weight_cols: list[int]  # where the weights lie among each neuron's operands
    bias_cols: list[int]  # where the bias (the constant 1.0) lies, if anywhere
    padded: bool  # some window reads the constant 0.0 (zero padding)


@dataclass(eq=False)
class Convolution(BlockOp):
    """`Z = (Xw @ W.T + b)`, the windows `Xw` of one block gathered at once."""

    params: ParameterMatrix  # the shared P = [W | b], one row per output channel
    W: Array
    b: Array | None
    Xw: Array  # the gathered windows, (n, windows, k)
    IDX: Array  # the constant holding the gather index, `layout.gather`
    layout: WindowLayout
    n_windows: int
    n_channels: int
    channels_first: bool  # Z's columns channel by channel, else window by window
    contiguous: bool  # the windows are the block's columns in order: Xw is a reshape of it

    @staticmethod
    def find(
        blocks: Blocks, matmul_groups: dict[int, list[ir.Equation]]
    ) -> dict[int, list[list[ir.Equation]]]:
        """Matrix-product groups of one depth that share one weight matrix over different
        windows (a convolution's output positions, a layer applied to each token of a
        sequence), by the first equation of the first."""
        by_rows: dict[tuple, list[list[ir.Equation]]] = {}
        for group in matmul_groups.values():
            rows = tuple(blocks.dot_sides(eq)[0] for eq in group)
            by_rows.setdefault((blocks.depth[group[0].out], rows), []).append(group)
        found = {}
        for windows in by_rows.values():
            if len(windows) > 1:
                found[id(windows[0][0])] = windows
        return found

    @staticmethod
    def layout_of(blocks: Blocks, windows: list[list[ir.Equation]]) -> WindowLayout | None:
        """Where each window's operands lie, if the windows fit one gathered product.

        Every window must read columns of one and the same block, or the constant 0.0 (zero
        padding, read from a column of zeros appended to the block), in the same positions as
        the others except for the padding, and may pair one weight with the constant 1.0 (the
        bias) in the same position in every window.
        """
        operands = [blocks.dot_sides(window[0])[1] for window in windows]
        width = len(operands[0])
        bias = [k for k in range(width) if all(is_number(reads[k], 1.0) for reads in operands)]
        if len(bias) > 1:
            return None
        weights = [k for k in range(width) if k not in bias]
        sources: dict[int, Block] = {}
        index, padded = [], False
        for reads in operands:
            row = []
            for k in weights:
                x = reads[k]
                if is_number(x, 0.0):
                    row.append(-1)
                    padded = True
                elif x in blocks.where and blocks.per_sample(x):
                    # (a variable not computed yet, as a later time step's state, is not)
                    block, j = blocks.where[x]
                    sources[id(block)] = block
                    row.append(j)
                else:
                    return None
            index.append(row)
        if len(sources) != 1:
            return None
        (block,) = sources.values()
        gather = numpy().array(index)
        gather[gather < 0] = block.width  # the appended column of zeros
        return WindowLayout(block, gather, weights, bias, padded)

    @classmethod
    def lower(cls, blocks: Blocks, windows: list[list[ir.Equation]], layout: WindowLayout) -> None:
        """One weight matrix over every window: gather the windows, one product for all.

        Xw = B[:, IDX]                                   (n, windows, k), IDX the columns
        Z  = (Xw @ W.T + b), channels first, flattened   (n, channels * windows)

        With zero padding, B is first given a column of zeros, which IDX reads for each
        padded position.
        """
        source = layout.source
        rows = [
            list(map(blocks.param_index.__getitem__, blocks.dot_sides(eq)[0])) for eq in windows[0]
        ]
        n_windows, n_channels = len(windows), len(windows[0])
        k = len(layout.weight_cols)
        Z = blocks.block("Z", n_windows * n_channels)
        number = Z.array.number
        params = ParameterMatrix.read(blocks, rows, Array("P", number))
        P = params.array
        W, b = Array("W", number, (n_channels, k)), None
        blocks.emit(W, bp.columns(P, index_item(layout.weight_cols)))
        if layout.bias_cols:
            b = Array("b", number, (n_channels,))
            blocks.emit(b, bp.columns(P, layout.bias_cols[0]))
        IDX = blocks.constant("windows", layout.gather)
        Xw = Array("Xw", number, ("n", n_windows, k))
        B: bp.Operand = source.array
        if layout.padded:
            B = bp.concatenate([B, bp.zeros(BATCH, 1)])
        # Windows one after another, each read in order, are a reshape of the block (a view).
        contiguous = not layout.padded and numpy().array_equal(
            layout.gather.ravel(), numpy().arange(source.width)
        )
        if contiguous:
            blocks.emit(Xw, bp.reshape(B, BATCH, n_windows, k))
        else:
            blocks.emit(Xw, bp.columns(B, IDX))
        product: bp.Operand = bp.matmul(Xw, bp.transpose(W))
        if b is not None:
            product = bp.add(product, b)
        # Z's columns in the order the program made them: channel by channel (a convolution's
        # feature maps) or window by window (a layer applied to each token of a sequence), so
        # that the ops reading them read a view.
        order = blocks.position
        channels_first = max(order[id(eq)] for eq in windows[0]) > min(
            order[id(eq)] for eq in windows[1]
        )
        if channels_first:
            product = bp.transpose(product, (0, 2, 1))
        blocks.emit(Z.array, bp.reshape(product, BATCH, Z.width))
        for position, window in enumerate(windows):
            for channel, eq in enumerate(window):
                column = (
                    channel * n_windows + position
                    if channels_first
                    else position * n_channels + channel
                )
                blocks.place(eq.out, Z, column)
        blocks.block_ops.append(
            cls(Z, params, W, b, Xw, IDX, layout, n_windows, n_channels, channels_first, contiguous)
        )


# ------------------------------------------------------------------------------------------
# Rows of a parameter table chosen by a per-sample index: an embedding


@dataclass(eq=False)
class Gather(BlockOp):
    """`E = T[I]`: the `take` equations of one depth that read per-sample indices with the
    columns of one table of parameters (an embedding's row for each token of a sample), one
    gather for all. With Q indices (positions) and D columns, E is (batch, Q * D), the row for
    index q in columns q * D .. q * D + D - 1. Its backward adds each sample's gradient rows
    to the rows they were read from."""

    params: ParameterMatrix  # T, the (rows, width) table
    index: Array  # I, the samples' row numbers: (batch,) for one index, (batch, Q) for Q
    n_indices: int

    @staticmethod
    def group(blocks: Blocks, eq: ir.Equation, done: set[int]) -> list[ir.Equation] | None:
        """The takes of eq's depth over the table eq reads, for every index x every column,
        in that order; None if eq's index is not per sample or its rows are not parameters."""
        if not (blocks.per_sample(eq.inputs[0]) and _all_params(blocks, eq)):
            return None
        takes = [
            other
            for other in blocks.alike(eq)
            if id(other) not in done
            and blocks.per_sample(other.inputs[0])
            and _all_params(blocks, other)
        ]
        indices = list(dict.fromkeys(other.inputs[0] for other in takes))
        columns = list(dict.fromkeys(other.inputs[1:] for other in takes))
        lanes = {(other.inputs[0], other.inputs[1:]): other for other in takes}
        if len(lanes) == len(takes) == len(indices) * len(columns):
            return [lanes[(x, column)] for x in indices for column in columns]
        return [other for other in takes if other.inputs[0] is eq.inputs[0]]  # one index

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> None:
        """`I = row_indices(x, rows)` (checked: whole numbers in range), `E = T[I]`."""
        E = blocks.block("E", len(group))
        indices = list(dict.fromkeys(eq.inputs[0] for eq in group))
        width = len(group) // len(indices)
        n_rows = len(group[0].inputs) - 1
        # T[r, j] is row r of column j: the parameter the j-th take returns for index r.
        table = [
            [blocks.param_index[eq.inputs[1 + r]] for eq in group[:width]] for r in range(n_rows)
        ]
        params = ParameterMatrix.read(blocks, table, blocks.fresh("T"))
        shape = ("n",) if len(indices) == 1 else ("n", len(indices))
        index = blocks.fresh("I", shape, dtype="i64")
        if len(indices) == 1:
            block, j = blocks.where[indices[0]]
            x: bp.Operand = bp.columns(block.array, j)
        else:
            x = blocks.assemble(indices).value
        blocks.emit(index, bp.expr("row_indices", x, n_rows))
        rows: bp.Operand = bp.index(params.array, index)
        blocks.emit(E.array, rows if len(indices) == 1 else bp.reshape(rows, BATCH, E.width))
        for j, eq in enumerate(group):
            blocks.place(eq.out, E, j)
        blocks.block_ops.append(cls(E, params, index, len(indices)))


@dataclass(eq=False)
class Pick(BlockOp):
    """`out = take_along_axis(M, I)`: the `take` equations of one depth that pick, by a
    per-sample index, one of a row of per-sample values (a target's logit), one op for all.
    M is (batch, L, k), a row of k per equation; its backward puts each equation's gradient
    where its index points, zeros elsewhere."""

    rows: Assembled  # M, assembled
    index: Array  # I, (batch, L, 1)
    width: int  # k

    @staticmethod
    def group(blocks: Blocks, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """The takes of eq's depth whose index and rows are all per sample (empty if eq's
        are not)."""
        return [
            other
            for other in blocks.alike(eq)
            if id(other) not in done and all(map(blocks.per_sample, other.inputs))
        ]

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> None:
        k, L = len(group[0].inputs) - 1, len(group)
        out = blocks.block("v" if L == 1 else "H", L)
        rows = blocks.assemble([x for eq in group for x in eq.inputs[1:]])
        index = blocks.fresh("I", ("n", L, 1), dtype="i64")
        chosen = blocks.assemble([eq.inputs[0] for eq in group])
        blocks.emit(index, bp.index(bp.expr("row_indices", chosen.value, k), ALL, ALL, None))
        M = bp.reshape(rows.value, BATCH, L, k)
        picked = bp.expr("take_along", M, index, 2)
        blocks.emit(out.array, bp.index(picked, ALL, ALL, 0))
        for j, eq in enumerate(group):
            blocks.place(eq.out, out, j)
        blocks.block_ops.append(cls(out, rows, index, k))


def _all_params(blocks: Blocks, eq: ir.Equation) -> bool:
    return all(x in blocks.param_index for x in eq.inputs[1:])


# ------------------------------------------------------------------------------------------
# A sum, dot or logsumexp over the columns of blocks: a row reduction


@dataclass(eq=False)
class RowReduce(BlockOp):
    """Row reductions of per-sample columns, one per equation of a group, as one array op:
    `vsum` of columns, `dot` of two halves, or `logsumexp` of columns (a row max, then a row
    sum). One equation is a (batch, 1) column reducing a (batch, k) matrix; a group of L is a
    (batch, L) block reducing a (batch, L, k) stack, its shorter rows padded with what changes
    nothing (0 for a sum or a dot, -inf for a log-sum-exp)."""

    op: ops.Op  # VSUM, DOT or LOGSUMEXP
    matrices: list[Assembled]  # the assembled operands: M, or the halves L and R of a dot
    stacked: bool  # the operands are read as (batch, L, k) stacks, not one (batch, k) matrix
    k: int

    @classmethod
    def group(cls, blocks: Blocks, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """eq and the reductions of its depth by the same op over per-sample columns; empty if
        eq reads something else, or is alone and too small to be worth a reduction (a `dot`
        of one pair, a `vsum` of one term: an elementwise op)."""
        if not all(map(blocks.per_sample, eq.inputs)):
            return []
        group = [
            other
            for other in blocks.alike(eq)
            if id(other) not in done and (other is eq or all(map(blocks.per_sample, other.inputs)))
        ]
        least = {ops.VSUM: 2, ops.DOT: 4, ops.LOGSUMEXP: 1}[eq.op]
        if len(group) == 1 and eq.op is ops.VSUM:
            # A sum of the columns of many blocks (the terms of a long chain) is added up as
            # they are (an elementwise vsum), not first gathered into one matrix.
            blocks_read = {id(blocks.where[x][0]) for x in eq.inputs}
            least = 2 if len(blocks_read) <= 4 else math.inf
        return group if len(group) > 1 or len(eq.inputs) >= least else []

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> None:
        """The reduction of each row (of each stack, for a group of several); dots of two
        per-sample vectors as batched matrix products where they have the structure."""
        op = group[0].op
        if op is ops.DOT and len(group) > 1 and not blocks.careful:
            if BatchedProduct.lower(blocks, group):
                return
        halves = [_halves(eq) for eq in group] if op is ops.DOT else [[eq.inputs] for eq in group]
        k = max(len(half) for parts in halves for half in parts)
        stacked = len(group) > 1 or len({len(half) for parts in halves for half in parts}) > 1
        matrices = []
        for part in range(len(halves[0])):
            rows = [parts[part] for parts in halves]
            pad = -math.inf if op is ops.LOGSUMEXP else 0.0
            matrices.append(blocks.assemble(_padded(blocks, rows, k, pad)))
        out = blocks.block("s", len(group))
        reduced = cls(out, op, matrices, stacked, k)
        M = reduced.read()
        axis, keepdims = (2, False) if stacked else (1, True)
        if op is ops.VSUM:
            value = bp.reduce("sum", M[0], axis, keepdims)
        elif op is ops.DOT:
            value = bp.reduce("sum", bp.map_op(ops.MUL, M[0], M[1]), axis, keepdims)
        else:
            # shifted by the row's max, so no exponent is positive; by 0 where the max is
            # infinite (the sum is then inf or 0 itself), as on floats
            m = blocks.fresh("m", ("n", len(group), 1) if stacked else ("n", 1))
            blocks.emit(m, bp.reduce("max", M[0], axis, keepdims=True))
            blocks.emit(m, bp.expr("finite_or_zero", m))
            shift = bp.index(m, ALL, ALL, 0) if stacked else m
            total = bp.reduce("sum", bp.expr("exp", bp.sub(M[0], m)), axis, keepdims)
            value = bp.add(shift, bp.expr("log", total))
        blocks.emit(out.array, value)
        blocks.block_ops.append(reduced)
        for j, eq in enumerate(group):
            blocks.place(eq.out, out, j)

    def read(self) -> list[bp.Operand]:
        """The operands as the reduction reads them: (batch, L, k) stacks or matrices."""
        if not self.stacked:
            return [matrix.value for matrix in self.matrices]
        L = self.out.width
        return [bp.reshape(matrix.value, BATCH, L, self.k) for matrix in self.matrices]


@dataclass(eq=False)
class BatchedProduct(BlockOp):
    """`S = U @ V^T` over (batch, C, I, k) and (batch, C, J, k) stacks: dot products of two
    per-sample vectors (attention's q . k, and its weights . values) as batched matrix
    products, when each dot pairs one of I rows with one of J rows within one of C groups
    (heads). Each dot is one entry of S (`lanes` says which); S's other entries are computed
    and not read.

    A dot over a shorter prefix of a row (position t of causal attention reads the values of
    positions 0..t) reads the whole row, its own vector padded with zeros: the terms added are
    0 * x, nothing while the row's numbers are finite (and were they not, the dot over the
    whole row, in the same group, would not be either)."""

    S: Array  # the products
    U: Assembled  # the assembled rows, (batch, C * I * k)
    V: Assembled
    shape: tuple[int, int, int, int]  # C, I, J, k
    lanes: Array | None  # the constant: each dot's entry of S, flattened; None: all, in order

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> bool:
        """The product for the group if its dots have the structure; False (writing nothing)
        if not, or if it would not compute less than the dots one by one."""
        layout = _product_layout([_halves(eq) for eq in group])
        if layout is None:
            return False
        left, right, lanes = layout
        groups, n_left, n_right = len(left), len(left[0]), len(right[0])
        k = max(len(row) for rows in (*left, *right) for row in rows)
        # Worth it when the products computed and not read are few, and fewer numbers are
        # gathered than the dots' own operands.
        if groups * n_left * n_right > 4 * len(group) or groups * (n_left + n_right) >= 2 * len(
            group
        ):
            return False
        U = blocks.assemble(_padded(blocks, [row for rows in left for row in rows], k, 0.0))
        V = blocks.assemble(_padded(blocks, [row for rows in right for row in rows], k, 0.0))
        out = blocks.block("s", len(group))
        shape = (groups, n_left, n_right, k)
        S = blocks.fresh("S", ("n", *shape[:3]))
        right_stack = bp.transpose(product_stack(V.value, shape, 2), (0, 1, 3, 2))
        blocks.emit(S, bp.matmul(product_stack(U.value, shape, 1), right_stack))
        size = groups * n_left * n_right
        index = None
        if lanes != list(range(size)):
            index = blocks.constant("lanes", numpy().array(lanes))
        flat = bp.reshape(S, BATCH, size)
        blocks.emit(out.array, flat if index is None else bp.columns(flat, index))
        for j, eq in enumerate(group):
            blocks.place(eq.out, out, j)
        blocks.block_ops.append(cls(out, S, U, V, shape, index))
        return True


def product_stack(matrix: bp.Operand, shape: tuple[int, int, int, int], side: int) -> bp.Expr:
    """The assembled rows of one side as a (batch, groups, rows, k) stack."""
    groups, k = shape[0], shape[3]
    return bp.reshape(matrix, BATCH, groups, shape[side], k)


Row = tuple  # a dot's half: a tuple of variables


def _product_layout(
    halves: list[list[Row]],
) -> tuple[list[list[Row]], list[list[Row]], list[int]] | None:
    """How dots (each a pair of halves) are entries of batched products: per group (head) its
    distinct left rows and right rows, and each dot's entry (c, i, j) flattened; None if the
    groups are not all of one size. A half that is a prefix of a longer half of the same side
    is read as the longer one (the other half padded with zeros), on whichever side makes
    fewer rows."""
    best = None
    lengths = {len(pair[0]) for pair in halves}
    sides = (None, 0, 1) if len(lengths) > 1 else (None,)
    for side in sides:
        rows = [list(pair) for pair in halves]
        if side is not None:
            longest = _longest_with_prefix([pair[side] for pair in halves])
            if longest is None:
                continue
            for pair in rows:
                pair[side] = longest[pair[side]]
        layout = _components(rows)
        if layout is not None and (best is None or _size(layout) < _size(best)):
            best = layout
    return best


def _size(layout: tuple) -> int:
    left, right, _ = layout
    return len(left) * (len(left[0]) + len(right[0]))


def _longest_with_prefix(rows: list[Row]) -> dict[Row, Row] | None:
    """Each row to the longest row of the list it is a prefix of (itself if none); None when
    the rows are too many and long to look (the search costs their summed squared length)."""
    distinct = sorted(set(rows), key=len, reverse=True)
    if sum(len(row) ** 2 for row in distinct) > 1_000_000:
        return None
    owner: dict[Row, Row] = {}
    longest = {}
    for row in distinct:
        longest[row] = owner.get(row, row)
        if row not in owner:
            for m in range(1, len(row) + 1):
                owner.setdefault(row[:m], row)
    return longest


def _components(
    pairs: list[list[Row]],
) -> tuple[list[list[Row]], list[list[Row]], list[int]] | None:
    """The connected groups of left and right rows the pairs link, if all are of one size."""
    parent: dict[tuple, tuple] = {}

    def find(node: tuple) -> tuple:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in pairs:
        a, b = find((0, left)), find((1, right))
        if a != b:
            parent[a] = b
    members: dict[tuple, tuple[dict, dict]] = {}
    for left, right in pairs:
        lefts, rights = members.setdefault(find((0, left)), ({}, {}))
        lefts.setdefault(left, len(lefts))
        rights.setdefault(right, len(rights))
    groups = list(members.values())
    n_left, n_right = len(groups[0][0]), len(groups[0][1])
    if any(len(lefts) != n_left or len(rights) != n_right for lefts, rights in groups):
        return None
    number = {root: c for c, root in enumerate(members)}
    lanes = []
    for left, right in pairs:
        c = number[find((0, left))]
        lefts, rights = groups[c]
        lanes.append((c * n_left + lefts[left]) * n_right + rights[right])
    return [list(lefts) for lefts, _ in groups], [list(rights) for _, rights in groups], lanes


def _padded(blocks: Blocks, rows: list[Row], k: int, value: float) -> list[Any]:
    """The rows' variables one after another, each row padded to k with the column of
    `value` (made only if some row is shorter)."""
    if all(len(row) == k for row in rows):
        return [x for row in rows for x in row]
    pad = blocks.pad_var(value)
    return [x for row in rows for x in (*row, *[pad] * (k - len(row)))]


def _halves(eq: ir.Equation) -> list[tuple[ir.Operand, ...]]:
    half = len(eq.inputs) // 2
    return [eq.inputs[:half], eq.inputs[half:]]


# ------------------------------------------------------------------------------------------
# Sums over windows of one block: an average pool


@dataclass(eq=False)
class WindowSum(BlockOp):
    """`S = B[:, IDX].sum(2)`: vsum equations of the same size over windows of one block (the
    windows of an average pool), one gathered sum for all; each is a column of S."""

    source: Block
    IDX: Array  # the constant holding the (windows, k) column index into source
    overlapping: bool  # some column is in two windows

    @staticmethod
    def candidates(blocks: Blocks) -> dict[int, list[ir.Equation]]:
        """The vsum equations of the program by their number of terms (two or more)."""
        by_size: dict[int, list[ir.Equation]] = {}
        for eq in blocks.program.equations:
            if eq.op is ops.VSUM and len(eq.inputs) > 1:
                by_size.setdefault(len(eq.inputs), []).append(eq)
        return by_size

    @classmethod
    def lower(
        cls,
        blocks: Blocks,
        eq: ir.Equation,
        candidates: dict[int, list[ir.Equation]],
        done: set[int],
    ) -> list[ir.Equation] | None:
        """The gathered sum of eq and every later vsum like it over the same block; the
        equations it computes, or None (writing nothing) if eq has no such company."""
        block = _single_source(blocks, eq.inputs)
        if block is None:
            return None
        group = [
            other
            for other in candidates.get(len(eq.inputs), [])
            if id(other) not in done and _single_source(blocks, other.inputs) is block
        ]
        if len(group) < 2:
            return None
        index = numpy().array([[blocks.where[x][1] for x in other.inputs] for other in group])
        IDX = blocks.constant("windows", index)
        out = blocks.block("S", len(group))
        blocks.emit(out.array, bp.reduce("sum", bp.columns(block.array, IDX), 2))
        for j, member in enumerate(group):
            blocks.place(member.out, out, j)
        overlapping = len(set(index.ravel().tolist())) < index.size
        blocks.block_ops.append(cls(out, block, IDX, overlapping))
        return group


def _single_source(blocks: Blocks, xs: Sequence[ir.Operand]) -> Block | None:
    """The one per-sample block every x is a column of (already computed), or None."""
    found = set()
    for x in xs:
        if not (x in blocks.where and blocks.per_sample(x)):
            return None
        found.add(id(blocks.where[x][0]))
    if len(found) != 1:
        return None
    return blocks.where[xs[0]][0]


# ------------------------------------------------------------------------------------------
# One op of the table over the columns of blocks


@dataclass(eq=False, slots=True)
class Elementwise(BlockOp):
    """One op of the table applied column by column: `H = tanh(Z)`, `v = a * theta[3]`,
    with the op's parameters (each column's the same)."""

    op: ops.Op
    operands: list[Operand]
    params: tuple = ()

    @classmethod
    def group(cls, blocks: Blocks, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """eq and the equations of its depth applying its op to operands of the same kinds
        (per-sample columns, parameters, constants, ...), as an SLP vectoriser packs
        isomorphic statements: each becomes a column of one array op."""
        alike = blocks.alike(eq)
        if len(alike) == 1:  # (alone at its depth, as each step of a chain)
            return alike
        kinds = cls._kinds(blocks, eq)
        return [
            other
            for other in alike
            if id(other) not in done and (other is eq or cls._kinds(blocks, other) == kinds)
        ]

    @staticmethod
    def _kinds(blocks: Blocks, eq: ir.Equation) -> tuple:
        """What each input of eq is, as far as packing goes: a constant, a parameter, a
        column of a per-sample block or of a row the same for every sample, or (kept apart,
        by identity) a scalar of the program."""
        kinds = []
        for x in eq.inputs:
            if not isinstance(x, ir.Var):
                kinds.append("const")
            elif x in blocks.param_index:
                kinds.append("param")
            else:
                block = blocks.where[x][0]
                kinds.append(x if block.scalar else ("wide" if block.wide else "sample"))
        return tuple(kinds)

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation]) -> None:
        """`out = op(...)` over the group's columns (a `BatchMean` for the batch mean of a
        per-sample block), noted for the checked run. Equations that apply the op to the same
        inputs are one column (common subexpressions)."""
        column: dict[tuple, int] = {}  # the inputs of each distinct equation -> its column
        unique, repeats = [], []
        for member in group if len(group) > 1 else ():
            key = tuple(x if isinstance(x, ir.Var) else repr(x) for x in member.inputs)
            if key in column:
                repeats.append((member, column[key]))
            else:
                column[key] = len(unique)
                unique.append(member)
        group = unique or group
        first = group[0]
        operands = [cls._operand(blocks, group, k) for k in range(len(first.inputs))]
        if first.op is ops.BATCH_MEAN and blocks.per_sample(first.inputs[0]):
            BatchMean.lower(blocks, group, operands[0])
        else:
            cls._lower_op(blocks, group, operands)
        out = blocks.where[first.out][0]
        for member, j in repeats:
            blocks.where[member.out] = (out, j)

    @classmethod
    def _lower_op(cls, blocks: Blocks, group: list[ir.Equation], operands: list) -> None:
        first = group[0]
        # (the batch mean of a value the same for every sample is that value: the op's kernel)
        rows = [_operand_rows(o) for o in operands if o.kind in ("block", "matrix")]
        rows = [wide for wide in rows if wide is not None]
        scalar = not rows and all(o.kind not in ("params", "array") for o in operands)
        wide = not scalar and all(rows)
        out = blocks.block("v" if len(group) == 1 else "H", len(group), scalar, wide)
        args = [blocks.value_of(o) for o in operands]
        blocks.emit(out.array, bp.map_op(first.op, *args, params=first.params))
        blocks.block_ops.append(cls(out, first.op, operands, first.params))
        blocks.checks[len(blocks.equations) - 1] = blocks.block_ops[-1]
        for j, member in enumerate(group):
            blocks.place(member.out, out, j)

    @staticmethod
    def _operand(blocks: Blocks, group: list[ir.Equation], k: int) -> Operand:
        """How the op reads its k-th input over the group: one operand, a row of parameters
        or of constants, columns of a block, or a matrix assembled from several blocks."""
        x = group[0].inputs[k]
        if len(group) == 1:
            return blocks.operand(x)
        xs = [member.inputs[k] for member in group]
        if all(_same(y, x) for y in xs):
            return blocks.operand(x)
        if not isinstance(x, ir.Var):
            return Operand("array", constant=blocks.constant("c", numpy().array([xs])))
        if x in blocks.param_index:
            return Operand("params", indices=tuple(blocks.param_index[y] for y in xs))
        block = blocks.where[x][0]
        if any(blocks.where[y][0] is not block for y in xs):
            return Operand("matrix", matrix=blocks.assemble(xs))
        cols = tuple(blocks.where[y][1] for y in xs)
        full = cols == tuple(range(block.width))
        return Operand("block", block, None if full else cols)


def _operand_rows(o: Operand) -> bool | None:
    """Whether a block operand is a row the same for every sample; None for a number."""
    if o.kind == "matrix":
        return o.matrix.wide
    return None if o.block.scalar else o.block.wide


# ------------------------------------------------------------------------------------------
# The mean over the batch


@dataclass(eq=False)
class BatchMean(BlockOp):
    """The mean over the batch of each column: one (1, width) row, the same for every
    sample. Its backward spreads each column's gradient evenly over the n samples."""

    operand: Operand

    @classmethod
    def lower(cls, blocks: Blocks, group: list[ir.Equation], operand: Operand) -> None:
        """`M = B.mean(0, keepdims=True)` over the columns the group reads."""
        out = blocks.block("M", len(group), wide=True)
        rows = blocks.columns_value(operand.block, operand.columns)
        blocks.emit(out.array, bp.reduce("mean", rows, 0, keepdims=True))
        blocks.block_ops.append(cls(out, operand))
        for j, member in enumerate(group):
            blocks.place(member.out, out, j)


# ------------------------------------------------------------------------------------------
# Helpers


def _first_weight(eq: ir.Equation) -> ir.Operand:
    """The weight of a dot's first pair (as `dot_sides` orients it), without the others."""
    w, x = eq.inputs[0], eq.inputs[len(eq.inputs) // 2]
    return x if isinstance(x, ir.Var) and x.kind == "param" else w


def _same(x: ir.Operand, y: ir.Operand) -> bool:
    """The same variable, or equal constants (-0.0 is not 0.0 here: it may change a sign)."""
    if isinstance(x, ir.Var) or isinstance(y, ir.Var):
        return x is y
    return repr(x) == repr(y)
