"""autograd_core.compiler.block_program and block_calculus: the lowering's program as data, its
printers and its backward rules.

The batched back-end's numbers are checked in test_batched; here, what the program is: equations
over typed arrays with no source text in them, printed as NumPy source by one printer (whose
parentheses must keep NumPy's meaning) and as a matrix jaxpr, and differentiated by one table of
rules in which elementwise ops use the op table's own partials.
"""

import numpy as np
import pytest

from autograd_core import Value, dot, ir, jit, ops, take
from autograd_core.compiler import block_calculus, block_ops
from autograd_core.compiler import block_program as bp
from autograd_core.compiler.batched import TrainingStep
from autograd_core.compiler.block_program import ALL, BATCH, Array
from nn import MLP


def two_layer(*x):
    hidden = [dot([0.5, -0.25, 0.125], [x[0], x[1], x[2]]).tanh() for _ in range(2)]
    return dot([1.5, -2.0], hidden)


def traced_step() -> TrainingStep:
    model = MLP(3, [4, 2], activation="tanh", seed=0)
    params = model.parameters()

    def sample_loss(*x):
        outputs = model(list(x))
        return [ops.LOGSUMEXP(*outputs) - outputs[0]]

    return TrainingStep(ir.trace(sample_loss, 3, params))


def leaves(x):
    if isinstance(x, bp.Expr):
        for arg in x.args:
            yield from leaves(arg)
        for param in x.params:
            if not isinstance(param, bp.Expr):
                yield param
    else:
        yield x


def test_the_block_program_holds_arrays_and_numbers_never_source_text():
    program = traced_step().block_program
    for eq in program.equations:
        assert eq.out is None or isinstance(eq.out, Array)
        for leaf in leaves(eq.value):
            assert not isinstance(leaf, str), (eq, leaf)


def test_matrix_program_prints_each_array_with_its_shape_on_the_batch_axis():
    step = traced_step()
    text = str(step.block_program)
    assert text.startswith("{ lambda ; theta:f64[26] X:f64[n,3] .")
    assert "Z1:f64[n,4] = add(matmul(X, transpose(W1)), b1)" in text
    assert "H1:f64[n,4] = map[tanh](Z1)" in text
    assert text.rstrip().endswith("in (loss, outputs, dtheta) }")


def test_the_numpy_source_is_the_block_program_one_line_per_equation():
    step = traced_step()
    body = step.source.splitlines()[2:-1]  # without the header, `n = ...` and `return`
    assert len(body) == len(step.block_program.equations)
    assert "    Z1 = X @ W1.T + b1" in body


def test_jit_matrix_program_is_the_program_matrix_source_prints():
    f = jit(two_layer)
    f(0.1, 0.2, 0.3)
    program = f.matrix_program
    assert "= map[tanh](" in str(program)
    assert len(f.matrix_source.splitlines()) - 3 == len(program.equations)


def test_matrix_program_before_the_first_call_says_nothing_is_traced():
    with pytest.raises(RuntimeError, match="nothing traced"):
        jit(two_layer).matrix_program  # noqa: B018


@pytest.mark.parametrize(
    "expression, expected",
    [
        (bp.matmul(bp.add(Array("a"), Array("b")), Array("c")), "(a + b) @ c"),
        (bp.sub(Array("a"), bp.sub(Array("b"), Array("c"))), "a - (b - c)"),
        (bp.sub(bp.sub(Array("a"), Array("b")), Array("c")), "a - b - c"),
        (bp.reduce("sum", bp.matmul(Array("a"), Array("c")), 0), "(a @ c).sum(0)"),
        (bp.map_op(ops.NEG, bp.add(Array("a"), Array("b"))), "-(a + b)"),
        (bp.map_op(ops.MUL, -1.0, Array("a")), "-1.0 * a"),
        (bp.index(Array("a"), ALL, (1, 3)), "a[:, 1:3]"),
    ],
)
def test_the_numpy_printer_keeps_numpys_meaning(expression, expected):
    text = bp.NumpyPrinter().text(expression)
    assert text == expected
    rng = np.random.default_rng(0)
    names = {
        "a": rng.normal(size=(3, 3)),
        "b": rng.normal(size=(3, 3)),
        "c": rng.normal(size=(3, 3)),
    }
    a, b, c = names["a"], names["b"], names["c"]
    direct = {
        "(a + b) @ c": (a + b) @ c,
        "a - (b - c)": a - (b - c),
        "a - b - c": (a - b) - c,
        "(a @ c).sum(0)": (a @ c).sum(0),
        "-(a + b)": -(a + b),
        "-1.0 * a": -a,
        "a[:, 1:3]": a[:, 1:3],
    }[expected]
    assert np.array_equal(eval(text, {"np": np}, names), direct)


def test_arithmetic_on_blocks_writes_map_expressions_folding_units():
    z = Array("Z", 1, ("n", 4))
    assert z * 1.0 is z
    assert 0.0 + z is z
    (partial,) = ops.TANH.partials(z, Array("X"))
    assert bp.NumpyPrinter().text(partial) == "1.0 - Z1 * Z1"


def test_an_activations_backward_is_the_op_tables_partial_on_the_block():
    step = traced_step()
    # tanh's rule in the op table, d/dz tanh z = 1 - tanh(z)^2, evaluated on the block H1
    assert "dZ1 = (1.0 - H1 * H1) * dH1" in step.source


def test_every_block_op_has_a_backward_rule():
    kinds = [
        cls
        for cls in vars(block_ops).values()
        if isinstance(cls, type)
        and issubclass(cls, block_ops.BlockOp)
        and cls is not block_ops.BlockOp
    ]
    assert kinds
    assert set(kinds) == set(block_calculus.RULES)


def test_a_shape_with_the_batch_axis_prints_as_n():
    text = bp.NumpyPrinter().text(bp.zeros(BATCH, 3))
    assert text == "np.zeros((n, 3), dtype)"  # the float type the program runs in


def test_row_numbers_of_a_gather_are_typed_as_integers():
    rows = [[Value(float(3 * r + c)) for c in range(3)] for r in range(5)]

    def sample_loss(i, j):
        return [dot(take(rows, i), take(rows, j))]

    params = [p for row in rows for p in row]
    step = TrainingStep(ir.trace(sample_loss, 2, params, [1.0, 2.0]))
    text = str(step.block_program)
    assert "I1:i64[n,2] = row_indices(X, 5)" in text
    assert "E1:f64[n,6] = reshape[n, 6](T1[I1])" in text


def test_liveness_drops_dead_assignments_and_releases_each_array_after_its_last_read():
    X = Array("X", shape=("n", 1))
    a, b, c, d = (Array("v", k, ("n", 1)) for k in range(1, 5))
    equations = [
        bp.Equation(a, bp.map_op(ops.TANH, X)),
        bp.Equation(b, bp.map_op(ops.EXP, X)),  # read by nothing
        bp.Equation(c, bp.add(a, 1.0)),
        bp.Equation(c, a, "+="),  # an update reads what it writes into
        bp.Equation(d, c),
    ]
    kept, released = bp.live_equations(equations, ["v4"])
    assert kept == [equations[0], *equations[2:]]
    assert released == [["X"], [], ["v1"], ["v3"]]  # v4, a result, is kept to the end
