"""The calculus of the lowering: one backward rule per block op, in one table (`RULES`).

A rule reads a block op of the forward pass (`autograd_core.compiler.block_ops`: its operands, its
result and the gradient that reached the result, `op.out.grad`) and writes the backward
equations of the block program adding its terms to its inputs' gradients; `Blocks` keeps the
books (a block's first term names its gradient, later ones are added to it).

Most of the calculus is not here but in the op table (`autograd_core.engine.ops`), as for the eager
engine and `jit`'s scalar backward pass: an elementwise op and a row reduction (vsum, dot,
logsumexp) evaluate the op's own partial rule on the blocks and multiply by the gradient.
What remains are the rules of array ops that no scalar op states: the mean over the batch
(spread by 1/n), a matrix product with a parameter matrix (dW = dZ.T @ A, dA = dZ @ W; over
windows for a convolution), a batched product of per-sample rows (dU = dS @ V, dV = dS^T @ U),
and the gathers (a row of a table, an entry of a row, a window of columns), whose gradient is
scattered back where it was read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import ops
from . import block_program as bp
from .block_ops import (
    BatchedProduct,
    BatchMean,
    BlockOp,
    Convolution,
    Elementwise,
    Gather,
    MatMul,
    ParameterMatrix,
    Pick,
    RowReduce,
    WindowSum,
    product_stack,
)
from .block_program import ALL, BATCH, Array
from .blocks import Blocks, consecutive, index_item, is_number, numpy, shaped


def backward(op: BlockOp, blocks: Blocks) -> None:
    """Write the backward equations of one block op, given the gradient of its result."""
    RULES[type(op)](op, blocks)


# ------------------------------------------------------------------------------------------
# The op table's own partials, on blocks


def elementwise(op: Elementwise, blocks: Blocks) -> None:
    """Each input's term: the op table's own partial rule, evaluated on the blocks, times
    the gradient of the result (as eager `backward` evaluates it on floats)."""
    g = op.out.grad
    args = [blocks.value_of(o) for o in op.operands]
    partials = op.op.partials(op.out.array, *args, *op.params)
    # A gradient of ones (the seed, passed on by a sum) is not multiplied in, where the
    # partial is an array of the result's shape (see `_shaped_as_result`).
    ones = id(g) in blocks.ones and not blocks.careful and _shaped_as_result(op)
    for o, local in zip(op.operands, partials, strict=True):
        # A partial that is the number 0 adds nothing, as in eager `backward` (0 * inf).
        if blocks.wanted(o) and not is_number(local, 0.0):
            term = local if ones and isinstance(local, bp.BlockValue) else _chain(blocks, local, g)
            blocks.add_grad(o, term, op.out)


def _shaped_as_result(op: Elementwise) -> bool:
    """Every operand is an array of the result's shape, so a partial that is an array (made
    of them and the result) is too: none is a number, a parameter or a row of either."""
    out = op.out
    if out.scalar:
        return False
    for o in op.operands:
        if o.kind == "matrix":
            if o.matrix.width != out.width or o.matrix.wide != out.wide:
                return False
        elif o.kind != "block" or o.block.scalar or o.block.wide != out.wide:
            return False
        elif (o.block.width if o.columns is None else len(o.columns)) != out.width:
            return False
    return True


def row_reduce(op: RowReduce, blocks: Blocks) -> None:
    """The op table's own partials of the reduction, evaluated on the rows (d sum / d M
    = 1, d logsumexp / d M = softmax(M), d (L . R) / d L = R), times the gradient."""
    M, out = op.read(), op.out
    g, value = out.grad, out.array
    if op.stacked:  # each row's gradient over its stack's last axis
        g, value = bp.index(g, ALL, ALL, None), bp.index(value, ALL, ALL, None)
    shape = (BATCH, out.width, op.k) if op.stacked else (BATCH, op.k)
    for matrix, local in zip(op.matrices, op.op.partials(value, *M), strict=True):
        if is_number(local, 1.0):
            # Every column gets the row's gradient: spread to M's shape, so that each piece
            # is sliced from it and a repeated column counts each time.
            term = bp.broadcast(g, *shape)
        else:
            term = blocks.product(local, g)
        blocks.add_to_pieces(matrix, bp.reshape(term, BATCH, -1) if op.stacked else term)


# ------------------------------------------------------------------------------------------
# The rules of the array ops


def batch_mean(op: BatchMean, blocks: Blocks) -> None:
    """d mean / d x_i = 1 / n for each sample i: the row's gradient, spread evenly."""
    out = op.out
    spread = bp.broadcast(bp.div(out.grad, BATCH), BATCH, out.width)
    blocks.add_grad(op.operand, spread, shaped(out.width))


def matmul(op: MatMul, blocks: Blocks) -> None:
    """dW += dZ.T @ A, db += the column sums of dZ, dA = dZ @ W."""
    W, b, A, dZ = op.W, op.b, op.A, op.out.grad
    dW, db = bp.matmul(bp.transpose(dZ), A.value), bp.reduce("sum", dZ, 0)
    dP = _weights_and_bias(blocks, op.params, W, b, op.batched_cols, op.const_cols, dW, db)
    if b is None and op.const_cols:
        c = blocks.constant("c", numpy().array(op.consts))
        cols = index_item(op.const_cols)
        blocks.emit(dP, bp.expr("outer", db, c), "+=", (ALL, cols))
    op.params.scatter_grad(blocks, dP)
    pieces = A.sources
    if not any(blocks.needs_grad(source.block) for source in pieces):
        return
    first = pieces[0]
    if len(pieces) == 1 and first.cols is None and first.block.grad is None:
        blocks.accumulate(first.block, bp.matmul(dZ, W), alias=False)
        return
    dA = blocks.fresh("dA", ("n", A.width))
    blocks.emit(dA, bp.matmul(dZ, W))
    blocks.add_to_pieces(A, dA)


def convolution(op: Convolution, blocks: Blocks) -> None:
    """dW += sum over windows of dZ.T @ Xw; the inputs' gradient scattered back per window."""
    W, b, Xw, dZ = op.W, op.b, op.Xw, op.out.grad
    layout = op.layout
    n_windows, n_channels, k = op.n_windows, op.n_channels, len(layout.weight_cols)
    dZw = Array("d", of=op.out.array, suffix="w", shape=("n", n_windows, n_channels))
    if op.channels_first:
        spread = bp.reshape(dZ, BATCH, n_channels, n_windows)
        blocks.emit(dZw, bp.transpose(spread, (0, 2, 1)))
    else:
        blocks.emit(dZw, bp.reshape(dZ, BATCH, n_windows, n_channels))
    dW = bp.matmul(bp.transpose(bp.reshape(dZw, -1, n_channels)), bp.reshape(Xw, -1, k))
    db = bp.reduce("sum", dZw, (0, 1))
    dP = _weights_and_bias(blocks, op.params, W, b, layout.weight_cols, layout.bias_cols, dW, db)
    op.params.scatter_grad(blocks, dP)
    source = layout.source
    if not blocks.needs_grad(source):
        return
    dXw = bp.matmul(dZw, W)
    if op.contiguous:
        blocks.accumulate(source, bp.reshape(dXw, BATCH, source.width), alias=False)
        return
    blocks.own(source)
    if not layout.padded:
        if len(numpy().unique(layout.gather)) == layout.gather.size:  # windows apart
            blocks.emit(source.grad, dXw, "+=", (ALL, op.IDX))
        else:
            blocks.emit(None, bp.expr("scatter_add", source.grad, op.IDX, dXw))
        return
    # Scattered into the block and its column of zeros, whose gradient is dropped.
    padded = Array("d", of=source.array, suffix="p", shape=("n", source.width + 1))
    blocks.emit(padded, bp.zeros(BATCH, source.width + 1))
    blocks.emit(None, bp.expr("scatter_add", padded, op.IDX, dXw))
    blocks.emit(source.grad, bp.index(padded, ALL, (None, source.width)), "+=")


def batched_product(op: BatchedProduct, blocks: Blocks) -> None:
    """dU = dS @ V and dV = dS^T @ U, dS the dots' gradients in their entries, else 0."""
    groups, n_left, n_right, _ = op.shape
    g = op.out.grad
    dS = Array("d", of=op.S, shape=op.S.shape)
    if op.lanes is None:
        blocks.emit(dS, bp.reshape(g, BATCH, groups, n_left, n_right))
    else:  # the dots' gradients in their entries of the flattened products
        size = groups * n_left * n_right
        flat = Array("d", of=op.S, suffix="f", shape=("n", size))
        blocks.emit(flat, bp.zeros(BATCH, size))
        lanes = op.lanes.value
        if len(numpy().unique(lanes)) == len(lanes):  # each dot its own entry
            blocks.emit(flat, g, "=", (ALL, op.lanes))
        else:  # two dots of the same rows: both gradients
            blocks.emit(None, bp.expr("scatter_add", flat, op.lanes, g))
        blocks.emit(dS, bp.reshape(flat, BATCH, groups, n_left, n_right))
    U, V = product_stack(op.U.value, op.shape, 1), product_stack(op.V.value, op.shape, 2)
    if blocks.sources_wanting_grad(op.U):
        blocks.add_to_pieces(op.U, bp.reshape(bp.matmul(dS, V), BATCH, -1))
    if blocks.sources_wanting_grad(op.V):
        dV = bp.matmul(bp.transpose(dS, (0, 1, 3, 2)), U)
        blocks.add_to_pieces(op.V, bp.reshape(dV, BATCH, -1))


def gather(op: Gather, blocks: Blocks) -> None:
    """dT[I[s, q]] += dE[s, q] for each sample s and index q (a row read twice gets both)."""
    dE: bp.Operand = op.out.grad
    if op.n_indices > 1:
        dE = bp.reshape(dE, BATCH, op.n_indices, op.out.width // op.n_indices)
    dT = op.params.start_grad(blocks)
    blocks.emit(None, bp.expr("scatter_rows", dT, op.index, dE))
    op.params.scatter_grad(blocks, dT)


def pick(op: Pick, blocks: Blocks) -> None:
    """dM[s, l, I[s, l]] = dout[s, l]; every other entry of dM is 0."""
    if not blocks.sources_wanting_grad(op.rows):
        return
    L = op.out.width
    dM = blocks.fresh("dM", ("n", L, op.width))
    blocks.emit(dM, bp.zeros(BATCH, L, op.width))
    g = bp.index(op.out.grad, ALL, ALL, None)
    blocks.emit(None, bp.expr("put_along", dM, op.index, g, 2))
    blocks.add_to_pieces(op.rows, bp.reshape(dM, BATCH, L * op.width))


def window_sum(op: WindowSum, blocks: Blocks) -> None:
    """Each term of a window gets the window's gradient: dB[:, IDX] += dS, spread."""
    source = op.source
    if not blocks.needs_grad(source):
        return
    blocks.own(source)
    spread = bp.index(op.out.grad, ALL, ALL, None)
    if op.overlapping:  # `+=` through a repeated index would add only once
        blocks.emit(None, bp.expr("scatter_add", source.grad, op.IDX, spread))
    else:
        blocks.emit(source.grad, spread, "+=", (ALL, op.IDX))


RULES: dict[type, Callable[[Any, Blocks], None]] = {
    Elementwise: elementwise,
    RowReduce: row_reduce,
    BatchMean: batch_mean,
    MatMul: matmul,
    Convolution: convolution,
    BatchedProduct: batched_product,
    Gather: gather,
    Pick: pick,
    WindowSum: window_sum,
}


# ------------------------------------------------------------------------------------------
# Helpers


def _weights_and_bias(
    blocks: Blocks,
    params: ParameterMatrix,
    W: Array,
    b: Array | None,
    weight_cols: list[int],
    bias_cols: list[int],
    dW: bp.Operand,
    db: bp.Operand,
) -> Array:
    """dW and db added to the gradient of a layer's parameters P = [W | b] (W is P itself
    when there is no bias); the gradient dP, a view of dtheta or to be scattered there."""
    dP = params.start_grad(blocks)
    if W is params.array:
        blocks.emit(dP, dW, "+=")
    else:
        add_to_columns(blocks, dP, weight_cols, dW, Array("d", of=W, shape=W.shape))
    if b is not None:
        grad = Array("d", of=b, shape=b.shape)
        blocks.emit(grad, bp.columns(dP, bias_cols[0]))
        blocks.emit(grad, db, "+=")
    return dP


def add_to_columns(
    blocks: Blocks, matrix: Array, cols: list[int], term: bp.Operand, view: Array
) -> None:
    """`matrix[:, cols] += term`: through a view `view` where the columns are consecutive
    (`dW = dP[:, 0:4]`, `dW += ...`, as the textbook writes it), else in place (a list of
    columns makes a copy, which `+=` would update instead of the matrix)."""
    key = index_item(cols)
    if consecutive(cols):
        blocks.emit(view, bp.columns(matrix, key))
        blocks.emit(view, term, "+=")
    else:
        blocks.emit(matrix, term, "+=", (ALL, key))


def _chain(blocks: Blocks, local: Any, g: Array) -> Any:
    """local * g, the chain rule's product (a partial 1 passes g on as it is)."""
    if is_number(local, 1.0):
        return g
    if is_number(local, -1.0) and not blocks.careful:
        return bp.map_op(ops.NEG, g)
    if blocks.careful:
        return bp.times(local, g, careful=True)
    return bp.map_op(ops.MUL, local, g)
