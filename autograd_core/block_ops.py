"""The block program: a traced sample's equations grouped into ops on (batch, width) matrices.

A traced program describes ONE sample. Run over a batch, each scalar variable becomes a column
of numbers, one per sample, and the program's structure shows which columns belong together:

* `dot` equations that read the same per-sample operands with different parameter rows are the
  neurons of one layer: together they are one matrix product, `Z = A @ W.T + b`, whose
  backward is `dW = dZ.T @ A` and `dA = dZ @ W` (`MatMul`);
* layers that share one weight matrix over different windows of the same block are the output
  positions of a convolution: one gathered product for every window (`Convolution`);
* the same op applied to every column of such a block (an activation over a layer) is one
  elementwise op on a (batch, width) matrix; its backward is the op table's own partial rule,
  evaluated on matrices (`Elementwise`);
* `vsum`s over windows of one block (an average pool's) are one gathered sum (`WindowSum`);
* a `vsum` or `dot` over a whole block is a row reduction (`RowReduce`), and `batch_mean` of a
  block the mean of each column over the batch (`BatchMean`);
* anything else is one array op per scalar equation over the batch (a (batch, 1) column), so
  every program runs, whatever its shape; recognition only makes it faster.

Each kind of op is a class that builds itself from equations (`lower`, which prints its
forward lines) and prints its own backward lines (`backward`) just below: the derivative lives
next to the op, as a PyTorch `autograd.Function` keeps its forward and backward together. The
walk over the program, the names and the gradient bookkeeping they share are the `Compiler`'s
(`autograd_core.lowering`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import ir, ops

if TYPE_CHECKING:
    from .lowering import Compiler

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
    """How a block op reads one input: a whole block, some of its columns, a matrix assembled
    from columns of several blocks, a parameter, a row of parameters (one per column), a
    constant or a row of constants. `columns` is None for the whole block."""

    kind: str  # "block", "matrix", "param", "params", "const" or "array"
    block: Block | None = None  # for "matrix", the assembled matrix (see `Compiler.pieces`)
    columns: tuple[int, ...] | None = None
    index: int = 0  # the parameter's index in theta
    value: float = 0.0
    indices: tuple[int, ...] = ()  # "params": each column's parameter's index in theta
    name: str = ""  # "array": the name of the (1, width) constant


@dataclass(frozen=True)
class Source:
    """Where columns of an assembled matrix come from: the columns `cols` of `block` (None:
    the whole block), at the positions `positions` of the matrix (None: all, in order)."""

    block: Block
    cols: tuple[int, ...] | None
    positions: tuple[int, ...] | None = None

    @property
    def whole(self) -> bool:
        return self.cols is None or list(self.cols) == list(range(self.block.width))


Pieces = list[Source]  # the sources of an assembled matrix


@dataclass(eq=False)
class BlockOp:
    """One op of the block program, computing the block `out`."""

    out: Block

    def backward(self, compiler: Compiler) -> None:
        """Print the lines adding this op's terms, given `out.grad`, to its inputs' gradients."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------
# The parameters of a layer: a matrix read from theta


@dataclass(frozen=True)
class ParameterMatrix:
    """A layer's parameters as the matrix `name` of the source, one row per neuron: a view of
    theta where its rows lie in order there, else gathered by an index constant."""

    name: str
    grad_source: str  # what its gradient starts as: the same view of dtheta, or zeros
    index: str | None  # the index constant it was gathered with; None for a view

    @classmethod
    def read(cls, compiler: Compiler, rows: list[list[int]], name: str) -> ParameterMatrix:
        """Print `name = theta[...]` for the parameters at the indices `rows` of theta."""
        np = numpy()
        index = np.array(rows)
        start = int(index[0, 0])
        gathered = None
        if np.array_equal(index, start + np.arange(index.size).reshape(index.shape)):
            source = f"theta[{start}:{start + index.size}].reshape{index.shape}"
            grad_source = f"dtheta[{start}:{start + index.size}].reshape{index.shape}"
        else:
            gathered = compiler.constant("index", index)
            source, grad_source = f"theta[{gathered}]", f"np.zeros({index.shape})"
        compiler.lines.append(f"{name} = {source}")
        return cls(name, grad_source, gathered)

    def start_grad(self, lines: list[str]) -> None:
        """Print `dP = ...`: a view of dtheta, added to in place, or zeros to scatter later."""
        lines.append(f"d{self.name} = {self.grad_source}")

    def scatter_grad(self, lines: list[str]) -> None:
        """Add the gradient of a gathered matrix to dtheta (a view's is there already)."""
        if self.index is not None:
            lines.append(f"np.add.at(dtheta, {self.index}, d{self.name})")


# ------------------------------------------------------------------------------------------
# A layer of dot neurons: one matrix product


@dataclass(eq=False)
class MatMul(BlockOp):
    """`Z = A @ W.T + b`: dot neurons reading the same per-sample operands A, one per row of
    parameters. The names are those of the arrays in the generated source."""

    params: ParameterMatrix  # P, the layer's parameters [W | b] (see `lower`)
    W: str  # the columns of P that meet A (P itself when there is no constant column)
    b: str | None  # the column of P that meets the constant 1.0, if that is the only constant
    A: str  # the (batch, k) matrix of operands
    batched_cols: list[int]  # where A's columns lie among each neuron's operands
    const_cols: list[int]  # where the constants lie
    consts: list[float]
    pieces: Pieces  # the blocks A was assembled from

    @staticmethod
    def groups(compiler: Compiler) -> dict[int, list[ir.Equation]]:
        """dot equations pairing parameters with the same per-sample operands, by first member."""
        param_index = compiler.param_index
        by_key: dict[tuple, list[ir.Equation]] = {}
        for eq in compiler.program.equations:
            if eq.op is not ops.DOT:
                continue
            pairs = compiler.dot_pairs(eq)
            if all(w in param_index for w, _ in pairs) and any(
                isinstance(x, ir.Var) and x not in param_index for _, x in pairs
            ):
                key = tuple(x if isinstance(x, ir.Var) else ("c", x) for _, x in pairs)
                if not any(x in param_index for _, x in pairs):
                    by_key.setdefault(key, []).append(eq)
        # Keyed by the first in program order; the neurons in the order of their parameters, so
        # that copies of one layer (over windows, over positions) list them alike.
        return {
            id(group[0]): sorted(group, key=lambda eq: param_index[_first_weight(eq)])
            for group in by_key.values()
        }

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> None:
        """Print `Z = A @ W.T + b` for a group of dot neurons; one elementwise op per neuron
        instead if one of their operands is a scalar of the program."""
        pairs = [compiler.dot_pairs(eq) for eq in group]
        operands = [x for _, x in pairs[0]]
        rows = [[compiler.param_index[w] for w, _ in row] for row in pairs]
        batched_cols = [k for k, x in enumerate(operands) if compiler.per_sample(x)]
        const_cols = [k for k, x in enumerate(operands) if not isinstance(x, ir.Var)]
        other_cols = [k for k in range(len(operands)) if k not in batched_cols + const_cols]
        if other_cols:  # a per-sample operand that is a scalar of the program: no matmul
            for eq in group:
                Elementwise.lower(compiler, [eq])
            return
        Z = Block(compiler.fresh("Z"), len(group))
        number = Z.name[1:]
        consts = [operands[k] for k in const_cols]
        # A layer's parameters P are [W | b]: the weights meet the inputs, the bias meets 1.0.
        whole = batched_cols == list(range(len(operands)))
        params = ParameterMatrix.read(compiler, rows, f"W{number}" if whole else f"P{number}")
        P = params.name
        W, b = P, None
        if not whole:
            W = f"W{number}"
            compiler.lines.append(f"{W} = {P}[:, {index_text(batched_cols)}]")
        if consts == [1.0]:
            b = f"b{number}"
            compiler.lines.append(f"{b} = {P}[:, {const_cols[0]}]")
        A = compiler.assemble([operands[k] for k in batched_cols])
        text = f"{Z.name} = {A} @ {W}.T"
        if b is not None:
            text += f" + {b}"
        elif const_cols:
            c = compiler.constant("c", numpy().array(consts))
            text += f" + {P}[:, {index_text(const_cols)}] @ {c}"
        compiler.lines.append(text)
        for j, eq in enumerate(group):
            compiler.place(eq.out, Z, j)
        pieces = compiler.pieces[A]
        compiler.block_ops.append(cls(Z, params, W, b, A, batched_cols, const_cols, consts, pieces))

    def backward(self, compiler: Compiler) -> None:
        """dW += dZ.T @ A, db += the column sums of dZ, dA = dZ @ W."""
        P, W, b, A, dZ = self.params.name, self.W, self.b, self.A, self.out.grad
        lines = compiler.lines
        self.params.start_grad(lines)
        if W == P:
            lines.append(f"d{W} += {dZ}.T @ {A}")
        else:
            add_to_columns(lines, f"d{P}", self.batched_cols, f"{dZ}.T @ {A}", f"d{W}")
        if b is not None:
            lines.append(f"d{b} = d{P}[:, {self.const_cols[0]}]")
            lines.append(f"d{b} += {dZ}.sum(0)")
        elif self.const_cols:
            c = compiler.constant("c", numpy().array(self.consts))
            cols = index_text(self.const_cols)
            lines.append(f"d{P}[:, {cols}] += np.outer({dZ}.sum(0), {c})")
        self.params.scatter_grad(lines)
        pieces = self.pieces
        if not any(compiler.needs_grad(source.block) for source in pieces):
            return
        first = pieces[0]
        if len(pieces) == 1 and first.cols is None and first.block.grad is None:
            compiler.accumulate(first.block, f"{dZ} @ {W}", alias=False)
            return
        dA = compiler.fresh("dA")
        lines.append(f"{dA} = {dZ} @ {W}")
        compiler.add_to_pieces(A, dA)


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
    """`Z = (Xw @ W.T + b)`, the windows `Xw` of one block gathered at once. The names are
    those of the arrays in the generated source."""

    params: ParameterMatrix  # the shared P = [W | b], one row per output channel
    W: str
    b: str | None
    Xw: str  # the gathered windows, (n, windows, k)
    IDX: str  # the constant holding the gather index, `layout.gather`
    layout: WindowLayout
    n_windows: int
    n_channels: int
    channels_first: bool  # Z's columns channel by channel, else window by window
    contiguous: bool  # the windows are the block's columns in order: Xw is a reshape of it

    @staticmethod
    def find(
        compiler: Compiler, matmul_groups: dict[int, list[ir.Equation]]
    ) -> dict[int, list[list[ir.Equation]]]:
        """Matrix-product groups of one depth that share one weight matrix over different
        windows (a convolution's output positions, a layer applied to each token of a
        sequence), by the first equation of the first."""
        by_rows: dict[tuple, list[list[ir.Equation]]] = {}
        for group in matmul_groups.values():
            rows = tuple(tuple(w for w, _ in compiler.dot_pairs(eq)) for eq in group)
            by_rows.setdefault((compiler.depth[group[0].out], rows), []).append(group)
        found = {}
        for windows in by_rows.values():
            if len(windows) > 1:
                found[id(windows[0][0])] = windows
        return found

    @staticmethod
    def layout_of(compiler: Compiler, windows: list[list[ir.Equation]]) -> WindowLayout | None:
        """Where each window's operands lie, if the windows fit one gathered product.

        Every window must read columns of one and the same block, or the constant 0.0 (zero
        padding, read from a column of zeros appended to the block), in the same positions as
        the others except for the padding, and may pair one weight with the constant 1.0 (the
        bias) in the same position in every window.
        """
        operands = [[x for _, x in compiler.dot_pairs(window[0])] for window in windows]
        width = len(operands[0])
        bias = [k for k in range(width) if all(_is_const(reads[k], 1.0) for reads in operands)]
        if len(bias) > 1:
            return None
        weights = [k for k in range(width) if k not in bias]
        sources: dict[int, Block] = {}
        index, padded = [], False
        for reads in operands:
            row = []
            for k in weights:
                x = reads[k]
                if _is_const(x, 0.0):
                    row.append(-1)
                    padded = True
                elif x in compiler.where and compiler.per_sample(x):
                    # (a variable not computed yet, as a later time step's state, is not)
                    block, j = compiler.where[x]
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
    def lower(
        cls, compiler: Compiler, windows: list[list[ir.Equation]], layout: WindowLayout
    ) -> None:
        """One weight matrix over every window: gather the windows, one product for all.

        Xw = B[:, IDX]                                   (n, windows, k), IDX the columns
        Z  = (Xw @ W.T + b), channels first, flattened   (n, channels * windows)

        With zero padding, B is first given a column of zeros, which IDX reads for each
        padded position.
        """
        source, lines = layout.source, compiler.lines
        rows = [[compiler.param_index[w] for w, _ in compiler.dot_pairs(eq)] for eq in windows[0]]
        n_windows, n_channels = len(windows), len(windows[0])
        Z = Block(compiler.fresh("Z"), n_windows * n_channels)
        number = Z.name[1:]
        params = ParameterMatrix.read(compiler, rows, f"P{number}")
        P = params.name
        W, b = f"W{number}", None
        lines.append(f"{W} = {P}[:, {index_text(layout.weight_cols)}]")
        if layout.bias_cols:
            b = f"b{number}"
            lines.append(f"{b} = {P}[:, {layout.bias_cols[0]}]")
        IDX = compiler.constant("windows", layout.gather)
        Xw = f"Xw{number}"
        B = source.name
        if layout.padded:
            B = f"np.concatenate(({B}, np.zeros((n, 1))), axis=1)"
        # Windows one after another, each read in order, are a reshape of the block (a view).
        contiguous = not layout.padded and numpy().array_equal(
            layout.gather.ravel(), numpy().arange(source.width)
        )
        if contiguous:
            lines.append(f"{Xw} = {B}.reshape(n, {n_windows}, {len(layout.weight_cols)})")
        else:
            lines.append(f"{Xw} = {B}[:, {IDX}]")
        bias = f" + {b}" if b else ""
        # Z's columns in the order the program made them: channel by channel (a convolution's
        # feature maps) or window by window (a layer applied to each token of a sequence), so
        # that the ops reading them read a view.
        order = compiler.position
        channels_first = max(order[id(eq)] for eq in windows[0]) > min(
            order[id(eq)] for eq in windows[1]
        )
        product = f"({Xw} @ {W}.T{bias})"
        if channels_first:
            product += ".transpose(0, 2, 1)"
        lines.append(f"{Z.name} = {product}.reshape(n, {Z.width})")
        for position, window in enumerate(windows):
            for channel, eq in enumerate(window):
                column = (
                    channel * n_windows + position
                    if channels_first
                    else position * n_channels + channel
                )
                compiler.place(eq.out, Z, column)
        compiler.block_ops.append(
            cls(Z, params, W, b, Xw, IDX, layout, n_windows, n_channels, channels_first, contiguous)
        )

    def backward(self, compiler: Compiler) -> None:
        """dW += sum over windows of dZ.T @ Xw; the inputs' gradient scattered back per window."""
        P, W, b, Xw, dZ = self.params.name, self.W, self.b, self.Xw, self.out.grad
        layout, lines = self.layout, compiler.lines
        n_windows, n_channels, k = self.n_windows, self.n_channels, len(layout.weight_cols)
        dZw = f"{dZ}w"
        if self.channels_first:
            lines.append(f"{dZw} = {dZ}.reshape(n, {n_channels}, {n_windows}).transpose(0, 2, 1)")
        else:
            lines.append(f"{dZw} = {dZ}.reshape(n, {n_windows}, {n_channels})")
        self.params.start_grad(lines)
        term = f"{dZw}.reshape(-1, {n_channels}).T @ {Xw}.reshape(-1, {k})"
        add_to_columns(lines, f"d{P}", layout.weight_cols, term, f"d{W}")
        if b is not None:
            lines.append(f"d{b} = d{P}[:, {layout.bias_cols[0]}]")
            lines.append(f"d{b} += {dZw}.sum((0, 1))")
        self.params.scatter_grad(lines)
        source = layout.source
        if not compiler.needs_grad(source):
            return
        dXw = f"{dZw} @ {W}"
        if self.contiguous:
            compiler.accumulate(source, f"({dXw}).reshape(n, {source.width})", alias=False)
            return
        compiler.own(source)
        if not layout.padded:
            if len(numpy().unique(layout.gather)) == layout.gather.size:  # windows apart
                lines.append(f"{source.grad}[:, {self.IDX}] += {dXw}")
            else:
                lines.append(f"_scatter_add({source.grad}, {self.IDX}, {dXw})")
            return
        # Scattered into the block and its column of zeros, whose gradient is dropped.
        padded = f"d{source.name}p"
        lines.append(f"{padded} = np.zeros((n, {source.width + 1}))")
        lines.append(f"_scatter_add({padded}, {self.IDX}, {dXw})")
        lines.append(f"{source.grad} += {padded}[:, :{source.width}]")


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
    index: str  # I, the samples' row numbers: (batch,) for one index, (batch, Q) for Q
    n_indices: int

    @staticmethod
    def group(compiler: Compiler, eq: ir.Equation, done: set[int]) -> list[ir.Equation] | None:
        """The takes of eq's depth over the table eq reads, for every index x every column,
        in that order; None if eq's index is not per sample or its rows are not parameters."""
        if not (compiler.per_sample(eq.inputs[0]) and _all_params(compiler, eq)):
            return None
        takes = [
            other
            for other in compiler.alike(eq)
            if id(other) not in done
            and compiler.per_sample(other.inputs[0])
            and _all_params(compiler, other)
        ]
        indices = list(dict.fromkeys(other.inputs[0] for other in takes))
        columns = list(dict.fromkeys(other.inputs[1:] for other in takes))
        lanes = {(other.inputs[0], other.inputs[1:]): other for other in takes}
        if len(lanes) == len(takes) == len(indices) * len(columns):
            return [lanes[(x, column)] for x in indices for column in columns]
        return [other for other in takes if other.inputs[0] is eq.inputs[0]]  # one index

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> None:
        """Print `I = _row_indices(x, rows)` (checked: whole numbers in range), `E = T[I]`."""
        E = Block(compiler.fresh("E"), len(group))
        indices = list(dict.fromkeys(eq.inputs[0] for eq in group))
        width = len(group) // len(indices)
        n_rows = len(group[0].inputs) - 1
        # T[r, j] is row r of column j: the parameter the j-th take returns for index r.
        table = [
            [compiler.param_index[eq.inputs[1 + r]] for eq in group[:width]] for r in range(n_rows)
        ]
        params = ParameterMatrix.read(compiler, table, compiler.fresh("T"))
        index = compiler.fresh("I")
        if len(indices) == 1:
            block, j = compiler.where[indices[0]]
            x = f"{block.name}[:, {j}]"
        else:
            x = compiler.assemble(indices)
        compiler.lines.append(f"{index} = _row_indices({x}, {n_rows})")
        rows = f"{params.name}[{index}]"
        compiler.lines.append(
            f"{E.name} = {rows if len(indices) == 1 else f'{rows}.reshape(n, {E.width})'}"
        )
        for j, eq in enumerate(group):
            compiler.place(eq.out, E, j)
        compiler.block_ops.append(cls(E, params, index, len(indices)))

    def backward(self, compiler: Compiler) -> None:
        """dT[I[s, q]] += dE[s, q] for each sample s and index q (a row read twice gets both)."""
        lines, dE = compiler.lines, self.out.grad
        if self.n_indices > 1:
            dE = f"{dE}.reshape(n, {self.n_indices}, {self.out.width // self.n_indices})"
        self.params.start_grad(lines)
        lines.append(f"_scatter_rows(d{self.params.name}, {self.index}, {dE})")
        self.params.scatter_grad(lines)


@dataclass(eq=False)
class Pick(BlockOp):
    """`out = take_along_axis(M, I)`: the `take` equations of one depth that pick, by a
    per-sample index, one of a row of per-sample values (a target's logit), one op for all.
    M is (batch, L, k), a row of k per equation; its backward puts each equation's gradient
    where its index points, zeros elsewhere."""

    rows: str  # M, assembled
    index: str  # I, (batch, L)
    width: int  # k

    @staticmethod
    def group(compiler: Compiler, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """The takes of eq's depth whose index and rows are all per sample (empty if eq's
        are not)."""
        return [
            other
            for other in compiler.alike(eq)
            if id(other) not in done and all(map(compiler.per_sample, other.inputs))
        ]

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> None:
        lines, k = compiler.lines, len(group[0].inputs) - 1
        out = Block(compiler.fresh("v" if len(group) == 1 else "H"), len(group))
        rows = compiler.assemble([x for eq in group for x in eq.inputs[1:]])
        index = compiler.fresh("I")
        chosen = compiler.assemble([eq.inputs[0] for eq in group])
        lines.append(f"{index} = _row_indices({chosen}, {k})[:, :, None]")
        M = f"{rows}.reshape(n, {len(group)}, {k})"
        lines.append(f"{out.name} = np.take_along_axis({M}, {index}, 2)[:, :, 0]")
        for j, eq in enumerate(group):
            compiler.place(eq.out, out, j)
        compiler.block_ops.append(cls(out, rows, index, k))

    def backward(self, compiler: Compiler) -> None:
        """dM[s, l, I[s, l]] = dout[s, l]; every other entry of dM is 0."""
        if not compiler.sources_wanting_grad(self.rows):
            return
        dM = compiler.fresh("dM")
        L = self.out.width
        compiler.lines.append(f"{dM} = np.zeros((n, {L}, {self.width}))")
        compiler.lines.append(
            f"np.put_along_axis({dM}, {self.index}, {self.out.grad}[:, :, None], 2)"
        )
        compiler.add_to_pieces(self.rows, f"{dM}.reshape(n, {L * self.width})")


def _all_params(compiler: Compiler, eq: ir.Equation) -> bool:
    return all(x in compiler.param_index for x in eq.inputs[1:])


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
    matrices: list[str]  # the assembled operands: M, or the halves L and R of a dot
    stacked: bool  # the operands are (batch, L, k) stacks, not one (batch, k) matrix

    @classmethod
    def group(cls, compiler: Compiler, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """eq and the reductions of its depth by the same op over per-sample columns; empty if
        eq reads something else, or is alone and too small to be worth a reduction (a `dot`
        of one pair, a `vsum` of one term: an elementwise op)."""
        if not all(map(compiler.per_sample, eq.inputs)):
            return []
        group = [
            other
            for other in compiler.alike(eq)
            if id(other) not in done
            and (other is eq or all(map(compiler.per_sample, other.inputs)))
        ]
        least = {ops.VSUM: 2, ops.DOT: 4, ops.LOGSUMEXP: 1}[eq.op]
        return group if len(group) > 1 or len(eq.inputs) >= least else []

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> None:
        """Print the reduction of each row (of each stack, for a group of several); dots of
        two per-sample vectors as batched matrix products where they have the structure."""
        op, lines = group[0].op, compiler.lines
        if op is ops.DOT and len(group) > 1 and not compiler.careful:
            if BatchedProduct.lower(compiler, group):
                return
        halves = [_halves(eq) for eq in group] if op is ops.DOT else [[eq.inputs] for eq in group]
        k = max(len(half) for parts in halves for half in parts)
        stacked = len(group) > 1 or len({len(half) for parts in halves for half in parts}) > 1
        matrices = []
        for part in range(len(halves[0])):
            rows = [parts[part] for parts in halves]
            matrix = compiler.assemble(
                _padded(compiler, rows, k, -math.inf if op is ops.LOGSUMEXP else 0.0)
            )
            matrices.append(f"{matrix}.reshape(n, {len(group)}, {k})" if stacked else matrix)
        out = Block(compiler.fresh("s"), len(group))
        axis = "2" if stacked else "1, keepdims=True"
        if op is ops.VSUM:
            lines.append(f"{out.name} = {matrices[0]}.sum({axis})")
        elif op is ops.DOT:
            lines.append(f"{out.name} = ({matrices[0]} * {matrices[1]}).sum({axis})")
        else:
            # shifted by the row's max, so no exponent is positive; by 0 where the max is
            # infinite (the sum is then inf or 0 itself), as on floats
            m = compiler.fresh("m")
            row_max = f"{matrices[0]}.max({'2' if stacked else '1'}, keepdims=True)"
            lines.append(f"{m} = {row_max}")
            lines.append(f"{m} = np.where(np.isinf({m}), 0.0, {m})")
            shift = f"{m}[:, :, 0]" if stacked else m
            lines.append(f"{out.name} = {shift} + np.log(np.exp({matrices[0]} - {m}).sum({axis}))")
        compiler.block_ops.append(cls(out, op, matrices, stacked))
        for j, eq in enumerate(group):
            compiler.place(eq.out, out, j)

    def backward(self, compiler: Compiler) -> None:
        """d sum / d M = 1, d logsumexp / d M = softmax(M), d (L . R) / d L = R and back."""
        M, out = self.matrices, self.out
        g, value = out.grad, out.name
        if self.stacked:  # each row's gradient over its stack's last axis
            g, value = f"{g}[:, :, None]", f"{value}[:, :, None]"
        terms = []
        if self.op is ops.VSUM:
            # Every column gets the row's gradient: spread it to M's shape, so that each piece
            # is sliced from it and a repeated column counts each time.
            terms = [f"np.broadcast_to({g}, {M[0]}.shape)"]
        elif self.op is ops.LOGSUMEXP:  # softmax times the upstream gradient
            terms = [compiler.product(f"np.exp({M[0]} - {value})", g)]
        else:
            terms = [compiler.product(g, M[1]), compiler.product(g, M[0])]
        for matrix, term in zip(M, terms, strict=True):
            name = matrix.split(".reshape")[0]
            compiler.add_to_pieces(name, f"({term}).reshape(n, -1)" if self.stacked else term)


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

    S: str  # the products' name
    U: str  # the assembled rows, (batch, C * I * k)
    V: str
    shape: tuple[int, int, int, int]  # C, I, J, k
    lanes: str | None  # the constant: each dot's entry of S, flattened; None: all, in order

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> bool:
        """Print the product for the group if its dots have the structure; False (printing
        nothing) if not, or if it would not compute less than the dots one by one."""
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
        U = compiler.assemble(_padded(compiler, [row for rows in left for row in rows], k, 0.0))
        V = compiler.assemble(_padded(compiler, [row for rows in right for row in rows], k, 0.0))
        out, S = Block(compiler.fresh("s"), len(group)), compiler.fresh("S")
        shape = (groups, n_left, n_right, k)
        compiler.lines.append(
            f"{S} = {_stack(U, shape, 1)} @ {_stack(V, shape, 2)}.transpose(0, 1, 3, 2)"
        )
        size = groups * n_left * n_right
        index = None
        if lanes != list(range(size)):
            index = compiler.constant("lanes", numpy().array(lanes))
        flat = f"{S}.reshape(n, {size})"
        compiler.lines.append(f"{out.name} = {flat if index is None else f'{flat}[:, {index}]'}")
        for j, eq in enumerate(group):
            compiler.place(eq.out, out, j)
        compiler.block_ops.append(cls(out, S, U, V, shape, index))
        return True

    def backward(self, compiler: Compiler) -> None:
        """dU = dS @ V and dV = dS^T @ U, dS the dots' gradients in their entries, else 0."""
        groups, n_left, n_right, _ = self.shape
        lines, g, dS = compiler.lines, self.out.grad, "d" + self.S
        if self.lanes is None:
            lines.append(f"{dS} = {g}.reshape(n, {groups}, {n_left}, {n_right})")
        else:
            lines.append(f"{dS} = np.zeros((n, {groups * n_left * n_right}))")
            lanes = compiler.constants[self.lanes]
            if len(numpy().unique(lanes)) == len(lanes):  # each dot its own entry
                lines.append(f"{dS}[:, {self.lanes}] = {g}")
            else:  # two dots of the same rows: both gradients
                lines.append(f"_scatter_add({dS}, {self.lanes}, {g})")
            lines.append(f"{dS} = {dS}.reshape(n, {groups}, {n_left}, {n_right})")
        U, V = _stack(self.U, self.shape, 1), _stack(self.V, self.shape, 2)
        if compiler.sources_wanting_grad(self.U):
            compiler.add_to_pieces(self.U, f"({dS} @ {V}).reshape(n, -1)")
        if compiler.sources_wanting_grad(self.V):
            compiler.add_to_pieces(self.V, f"({dS}.transpose(0, 1, 3, 2) @ {U}).reshape(n, -1)")


def _stack(matrix: str, shape: tuple[int, int, int, int], side: int) -> str:
    """The assembled rows of one side as a (batch, groups, rows, k) stack."""
    groups, k = shape[0], shape[3]
    return f"{matrix}.reshape(n, {groups}, {shape[side]}, {k})"


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


def _padded(compiler: Compiler, rows: list[Row], k: int, value: float) -> list[ir.Var]:
    """The rows' variables one after another, each row padded to k with the column of
    `value` (made only if some row is shorter)."""
    if all(len(row) == k for row in rows):
        return [x for row in rows for x in row]
    pad = compiler.pad_var(value)
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
    IDX: str  # the constant holding the (windows, k) column index into source
    overlapping: bool  # some column is in two windows

    @staticmethod
    def candidates(compiler: Compiler) -> dict[int, list[ir.Equation]]:
        """The vsum equations of the program by their number of terms (two or more)."""
        by_size: dict[int, list[ir.Equation]] = {}
        for eq in compiler.program.equations:
            if eq.op is ops.VSUM and len(eq.inputs) > 1:
                by_size.setdefault(len(eq.inputs), []).append(eq)
        return by_size

    @classmethod
    def lower(
        cls,
        compiler: Compiler,
        eq: ir.Equation,
        candidates: dict[int, list[ir.Equation]],
        done: set[int],
    ) -> list[ir.Equation] | None:
        """Print the gathered sum of eq and every later vsum like it over the same block; the
        equations it computes, or None (printing nothing) if eq has no such company."""
        block = _single_source(compiler, eq.inputs)
        if block is None:
            return None
        group = [
            other
            for other in candidates.get(len(eq.inputs), [])
            if id(other) not in done and _single_source(compiler, other.inputs) is block
        ]
        if len(group) < 2:
            return None
        index = numpy().array([[compiler.where[x][1] for x in other.inputs] for other in group])
        IDX = compiler.constant("windows", index)
        out = Block(compiler.fresh("S"), len(group))
        compiler.lines.append(f"{out.name} = {block.name}[:, {IDX}].sum(2)")
        for j, member in enumerate(group):
            compiler.place(member.out, out, j)
        overlapping = len(set(index.ravel().tolist())) < index.size
        compiler.block_ops.append(cls(out, block, IDX, overlapping))
        return group

    def backward(self, compiler: Compiler) -> None:
        """Each term of a window gets the window's gradient: dB[:, IDX] += dS, spread."""
        source = self.source
        if not compiler.needs_grad(source):
            return
        compiler.own(source)
        spread = f"{self.out.grad}[:, :, None]"
        if self.overlapping:  # `+=` through a repeated index would add only once
            compiler.lines.append(f"_scatter_add({source.grad}, {self.IDX}, {spread})")
        else:
            compiler.lines.append(f"{source.grad}[:, {self.IDX}] += {spread}")


def _single_source(compiler: Compiler, xs: Sequence[ir.Operand]) -> Block | None:
    """The one per-sample block every x is a column of (already computed), or None."""
    blocks = set()
    for x in xs:
        if not (x in compiler.where and compiler.per_sample(x)):
            return None
        blocks.add(id(compiler.where[x][0]))
    if len(blocks) != 1:
        return None
    return compiler.where[xs[0]][0]


# ------------------------------------------------------------------------------------------
# One op of the table over the columns of blocks


@dataclass(eq=False)
class Elementwise(BlockOp):
    """One op of the table applied column by column: `H = tanh(Z)`, `v = a * theta[3]`."""

    op: ops.Op
    operands: list[Operand]

    @classmethod
    def group(cls, compiler: Compiler, eq: ir.Equation, done: set[int]) -> list[ir.Equation]:
        """eq and the equations of its depth applying its op to operands of the same kinds
        (per-sample columns, parameters, constants, ...), as an SLP vectoriser packs
        isomorphic statements: each becomes a column of one array op."""
        kinds = cls._kinds(compiler, eq)
        return [
            other
            for other in compiler.alike(eq)
            if id(other) not in done and (other is eq or cls._kinds(compiler, other) == kinds)
        ]

    @staticmethod
    def _kinds(compiler: Compiler, eq: ir.Equation) -> tuple:
        """What each input of eq is, as far as packing goes: a constant, a parameter, a
        column of a per-sample block or of a row the same for every sample, or (kept apart,
        by identity) a scalar of the program."""
        kinds = []
        for x in eq.inputs:
            if not isinstance(x, ir.Var):
                kinds.append("const")
            elif x in compiler.param_index:
                kinds.append("param")
            else:
                block = compiler.where[x][0]
                kinds.append(x if block.scalar else ("wide" if block.wide else "sample"))
        return tuple(kinds)

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation]) -> None:
        """Print `out = op(...)` over the group's columns (a `BatchMean` for the batch mean of
        a per-sample block), and note the line for the checked run. Equations that apply the
        op to the same inputs are one column (common subexpressions)."""
        column: dict[tuple, int] = {}  # the inputs of each distinct equation -> its column
        unique, repeats = [], []
        for member in group:
            key = tuple(x if isinstance(x, ir.Var) else repr(x) for x in member.inputs)
            if key in column:
                repeats.append((member, column[key]))
            else:
                column[key] = len(unique)
                unique.append(member)
        group = unique
        first = group[0]
        operands = [cls._operand(compiler, group, k) for k in range(len(first.inputs))]
        if first.op is ops.BATCH_MEAN and compiler.per_sample(first.inputs[0]):
            BatchMean.lower(compiler, group, operands[0])
        else:
            cls._lower_op(compiler, group, operands)
        out = compiler.where[first.out][0]
        for member, j in repeats:
            compiler.where[member.out] = (out, j)

    @classmethod
    def _lower_op(cls, compiler: Compiler, group: list[ir.Equation], operands: list) -> None:
        first = group[0]
        # (the batch mean of a value the same for every sample is that value: the op's kernel)
        rows = [o.block for o in operands if o.kind in ("block", "matrix") and not o.block.scalar]
        scalar = not rows and all(o.kind not in ("params", "array") for o in operands)
        wide = not scalar and all(block.wide for block in rows)
        out = Block(compiler.fresh("v" if len(group) == 1 else "H"), len(group), scalar, wide)
        args = [compiler.text(o) for o in operands]
        compiler.lines.append(f"{out.name} = {compiler.printer.expression(first.op, args)}")
        compiler.block_ops.append(cls(out, first.op, operands))
        compiler.checks[len(compiler.lines) - 1] = compiler.block_ops[-1]
        for j, member in enumerate(group):
            compiler.place(member.out, out, j)

    @staticmethod
    def _operand(compiler: Compiler, group: list[ir.Equation], k: int) -> Operand:
        """How the op reads its k-th input over the group: one operand, a row of parameters
        or of constants, columns of a block, or a matrix assembled from several blocks."""
        x = group[0].inputs[k]
        xs = [member.inputs[k] for member in group]
        if all(_same(y, x) for y in xs):
            return compiler.operand(x)
        if not isinstance(x, ir.Var):
            return Operand("array", name=compiler.constant("c", numpy().array([xs])))
        if x in compiler.param_index:
            return Operand("params", indices=tuple(compiler.param_index[y] for y in xs))
        block = compiler.where[x][0]
        if any(compiler.where[y][0] is not block for y in xs):
            matrix = Block(compiler.assemble(xs), len(xs), wide=block.wide)
            return Operand("matrix", matrix)
        cols = tuple(compiler.where[y][1] for y in xs)
        full = cols == tuple(range(block.width))
        return Operand("block", block, None if full else cols)

    def backward(self, compiler: Compiler) -> None:
        """Each input's term: the op table's partial rule, evaluated on the blocks, times g."""
        operands, scratch = self.operands, compiler.scratch
        g = named(self.out.grad, scratch)
        args = [compiler.text(o) for o in operands]
        start = len(scratch.equations)
        partials = self.op.partials(named(self.out.name, scratch), *args)
        terms = [
            # A partial that is the number 0 adds nothing, as in eager `backward` (0 * inf).
            scratch.emit(ops.MUL, [local, g]) if compiler.wanted(o) and local != 0.0 else 0.0
            for o, local in zip(operands, partials, strict=True)
        ]
        new = scratch.equations[start:]
        made_here = {eq.out for eq in new}
        self._name_full_grads(terms, made_here)
        needed = {term for term in terms if isinstance(term, ir.Var)}
        kept = []
        for eq in reversed(new):
            if eq.out in needed:
                kept.append(eq)
                needed.update(x for x in eq.inputs if isinstance(x, ir.Var))
        products = {term for term in terms if term in made_here}
        compiler.lines.extend(self._line(compiler, eq, eq.out in products) for eq in reversed(kept))
        for o, term in zip(operands, terms, strict=True):
            compiler.add_grad(o, term, self.out)

    def _name_full_grads(self, terms: list[Any], made_here: set[ir.Var]) -> None:
        """A term that is the whole gradient of its input is named for it: dZ1 = ..."""
        named_blocks: set[int] = set()
        # A block read by two operands (x - x) gets two terms: neither is its whole gradient.
        readers = [id(o.block) for o in self.operands if o.kind == "block"]
        for o, term in zip(self.operands, terms, strict=True):
            if term in made_here and self._first_full_grad(o) and readers.count(id(o.block)) == 1:
                if id(o.block) not in named_blocks:
                    term.name = "d" + o.block.name
                    named_blocks.add(id(o.block))

    def _first_full_grad(self, o: Operand) -> bool:
        """o is a whole block shaped as `out`, and no term of its gradient came before."""
        out = self.out
        return (
            o.kind == "block"
            and not o.block.scalar
            and not out.scalar
            and o.block.grad is None
            and (o.columns is None or o.block.width == 1)
            and o.block.width == out.width
            and o.block.wide == out.wide
        )

    @staticmethod
    def _line(compiler: Compiler, eq: ir.Equation, product: bool) -> str:
        """eq as a line of the source; a chain-rule product as `_times` in careful mode."""
        if product and compiler.careful:
            a, b = (compiler.printer.operand(x) for x in eq.inputs)
            return f"{eq.out.name} = {compiler.product(a, b)}"
        return compiler.printer.line(eq)


# ------------------------------------------------------------------------------------------
# The mean over the batch


@dataclass(eq=False)
class BatchMean(BlockOp):
    """The mean over the batch of each column: one (1, width) row, the same for every
    sample. Its backward spreads each column's gradient evenly over the n samples."""

    operand: Operand

    @classmethod
    def lower(cls, compiler: Compiler, group: list[ir.Equation], operand: Operand) -> None:
        """Print `M = B.mean(0, keepdims=True)` over the columns the group reads."""
        out = Block(compiler.fresh("M"), len(group), wide=True)
        rows = compiler.columns_text(operand.block, operand.columns)
        compiler.lines.append(f"{out.name} = {rows}.mean(0, keepdims=True)")
        compiler.block_ops.append(cls(out, operand))
        for j, member in enumerate(group):
            compiler.place(member.out, out, j)

    def backward(self, compiler: Compiler) -> None:
        """d mean / d x_i = 1 / n for each sample i: the row's gradient, spread evenly."""
        out = self.out
        spread = f"np.broadcast_to({out.grad} / n, (n, {out.width}))"
        compiler.add_grad(self.operand, named(spread, compiler.scratch), Block("_", out.width))


# ------------------------------------------------------------------------------------------
# Helpers


def dot_pairs(eq: ir.Equation) -> list[tuple[ir.Operand, ir.Operand]]:
    """dot's (weight, operand) pairs, each oriented with the parameter first where there is one."""
    half = len(eq.inputs) // 2
    return [
        (x, w) if isinstance(x, ir.Var) and x.kind == "param" else (w, x)
        for w, x in zip(eq.inputs[:half], eq.inputs[half:], strict=True)
    ]


def _first_weight(eq: ir.Equation) -> ir.Operand:
    """The weight of a dot's first pair (as `dot_pairs` orients it), without the others."""
    w, x = eq.inputs[0], eq.inputs[len(eq.inputs) // 2]
    return x if isinstance(x, ir.Var) and x.kind == "param" else w


def add_to_columns(lines: list[str], matrix: str, cols: list[int], term: str, name: str) -> None:
    """Print `matrix[:, cols] += term`: through a view named `name` where the columns are
    consecutive (`dW = dP[:, 0:4]`, `dW += ...`, as the textbook writes it), else in place
    (a list of columns makes a copy, which `+=` would update instead of the matrix)."""
    index = index_text(cols)
    if consecutive(cols):
        lines.append(f"{name} = {matrix}[:, {index}]")
        lines.append(f"{name} += {term}")
    else:
        lines.append(f"{matrix}[:, {index}] += {term}")


def _same(x: ir.Operand, y: ir.Operand) -> bool:
    """The same variable, or equal constants (-0.0 is not 0.0 here: it may change a sign)."""
    if isinstance(x, ir.Var) or isinstance(y, ir.Var):
        return x is y
    return repr(x) == repr(y)


def _is_const(x: ir.Operand, number: float) -> bool:
    return not isinstance(x, ir.Var) and x == number


def consecutive(cols: Sequence[int]) -> bool:
    """The columns follow one another, as a slice takes them (so indexing gives a view)."""
    return list(cols) == list(range(cols[0], cols[0] + len(cols)))


def index_text(cols: list[int]) -> str:
    """A slice where the columns are consecutive (a view), else a list (a copy)."""
    if consecutive(cols):
        return f"{cols[0]}:{cols[0] + len(cols)}"
    return repr(cols)


def named(text: str, program: ir.Program) -> ir.Var:
    """A Var printed as `text`: an expression the op table's rules can compute with."""
    return ir.Var(text, "temp", program)


def numpy() -> Any:
    """NumPy, imported when first needed: the core engine runs without it."""
    import numpy

    return numpy
