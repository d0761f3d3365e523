"""autograd_core.compiler.ir: a traced program is data, a list of equations printed like a jaxpr.

The programs are checked by what they print and by running them: a ten-line interpreter below
evaluates the equations with the op table's forward functions, and its numbers must be the
eager engine's.
"""

import gc
import math

import pytest

from autograd_core import Value, dot, ir, ops, topological_order, value_and_grad, vsum


def evaluate(program: ir.Program, params: list[float], inputs: list[float]) -> list[float]:
    """Run the program's equations on floats: its outputs, then its gradients."""
    env = dict(zip(program.params, params, strict=True))
    env.update(zip(program.inputs, inputs, strict=True))

    def read(x):
        return env[x] if isinstance(x, ir.Var) else x

    for eq in program.equations:
        env[eq.out] = eq.op.forward(*map(read, eq.inputs), *eq.params)
    return [read(x) for x in (*program.outputs, *program.gradients)]


WEIGHTS = [0.5, -1.0]
BIAS = 0.1


def layer_program():
    """A neuron on two inputs with its weights as parameters, times a closed-over 3.0."""
    w = [Value(x) for x in WEIGHTS]
    b = Value(BIAS)
    scale = Value(3.0)  # read by f but not a parameter: a constant of the program

    def f(x0, x1):
        h = dot([*w, b], [x0, x1, 1.0]).tanh()
        ignored = (x0 * 7.0).exp()  # built, but no output needs it: not in the program
        assert ignored.data > 0.0
        return [h * scale, h]

    return ir.trace(f, 2, [*w, b], input_values=[0.2, 0.4])


# -- printing ---------------------------------------------------------------------------------


def test_a_program_prints_parameters_inputs_one_equation_per_node_and_outputs():
    assert str(layer_program()) == (
        "{ lambda p0 p1 p2 ; x0 x1 .\n"
        "    v0 = dot p0 p1 p2 x0 x1 1.0\n"
        "    v1 = tanh v0\n"
        "    v2 = mul v1 3.0\n"
        "  in (v2, v1) }"
    )


def test_the_backward_pass_prints_as_more_equations_of_the_same_kind():
    program = layer_program()
    program = ir.with_gradients(program, [*program.params, *program.inputs])
    # tanh' = 1 - tanh^2 (the op table's rule, written on the program's variables); the dot's
    # partials are its inputs with the halves swapped; d(bias) is d(dot) itself (times 1.0).
    assert str(program) == (
        "{ lambda p0 p1 p2 ; x0 x1 .\n"
        "    v0 = dot p0 p1 p2 x0 x1 1.0\n"
        "    v1 = tanh v0\n"
        "    v2 = mul v1 3.0\n"
        "    t3 = mul v1 v1\n"
        "    t4 = sub 1.0 t3\n"
        "    dv0 = mul t4 3.0\n"
        "    dp0 = mul x0 dv0\n"
        "    dp1 = mul x1 dv0\n"
        "    dx0 = mul p0 dv0\n"
        "    dx1 = mul p1 dv0\n"
        "  in (v2, v1, dp0, dp1, dv0, dx0, dx1) }"
    )
    # The chain rule's products, where eager takes 0 times anything as 0; t3 = v1 * v1 is the
    # tanh rule's own arithmetic, not one of them.
    assert {v.name for v in program.products} == {"dv0", "dp0", "dp1", "dx0", "dx1"}


def test_parametrised_ops_print_with_their_parameters():
    program = ir.trace(lambda x: (x**2.5).leaky_relu(), 1)
    assert str(program) == (
        "{ lambda  ; x0 .\n"
        "    v0 = power_of[exponent=2.5] x0\n"
        "    v1 = leaky_relu[slope=0.01] v0\n"
        "  in (v1) }"
    )
    assert ir.op_label(ops.POWER_OF, (2.5,)) == "power_of[exponent=2.5]"
    assert ir.op_label(ops.TANH) == "tanh"


def test_an_op_with_parameters_is_one_op_whatever_its_parameters():
    # Two exponents are one op applied with two parameters: one equation kind, one op object,
    # no op made per exponent (and none kept in a cache of factories).
    program = ir.trace(lambda x: x**2.0 + x**3.0 + x**2.0, 1)
    powers = [eq for eq in program.equations if eq.op is ops.POWER_OF]
    assert [eq.params for eq in powers] == [(2.0,), (3.0,), (2.0,)]
    assert {eq.op for eq in program.equations} == {ops.POWER_OF, ops.ADD}


# -- what tracing records ---------------------------------------------------------------------


def test_variables_are_parameters_inputs_or_results_of_equations():
    program = layer_program()
    assert [v.name for v in program.params] == ["p0", "p1", "p2"]
    assert [v.kind for v in program.params] == ["param"] * 3
    assert [v.name for v in program.inputs] == ["x0", "x1"]
    assert [v.kind for v in program.inputs] == ["input"] * 2
    assert [eq.op for eq in program.equations] == [ops.DOT, ops.TANH, ops.MUL]
    assert all(eq.out.kind == "temp" for eq in program.equations)
    assert program.outputs == [program.equations[2].out, program.equations[1].out]


def test_a_function_of_no_argument_or_one_returning_a_number_traces():
    program = ir.trace(lambda x: 4.0, 1)
    assert program.equations == [] and program.outputs == [4.0]
    identity = ir.trace(lambda x: x, 1)
    assert identity.outputs == identity.inputs


def test_traced_numbers_are_the_eager_ones():
    program = layer_program()
    h = math.tanh(WEIGHTS[0] * 0.7 + WEIGHTS[1] * -0.3 + BIAS)
    assert evaluate(program, [*WEIGHTS, BIAS], [0.7, -0.3]) == [h * 3.0, h]


def test_program_gradients_are_the_eager_gradients_exactly():
    def f(x, y):
        c = x * y + 2.0
        d = c * c - 3.0 * x / (1.0 + y * y)
        e = (d - c).relu() + abs(x - y) + vsum([x, y, c]).sigmoid()
        return e * c + (d**2).log() - y.exp()

    program = ir.trace(f, 2, input_values=[0.4, -1.1])
    program = ir.with_gradients(program, program.inputs)
    for xs in ((0.4, -1.1), (1.3, 0.2), (-0.8, 0.9)):
        value, dx, dy = evaluate(program, [], list(xs))
        assert (value, (dx, dy)) == value_and_grad(f)(*xs)


def test_an_input_the_output_does_not_depend_on_has_gradient_zero():
    program = ir.trace(lambda x, y: x.tanh(), 2)
    program = ir.with_gradients(program, program.inputs)
    assert program.gradients[1] == 0.0
    assert evaluate(program, [], [0.3, 5.0])[2] == 0.0


def test_equations_no_output_needs_are_dropped():
    # The forward of `unused` is traced (it is an output), then dropped from the gradient-only
    # program once eliminate_dead_code is told nothing reads it.
    program = ir.trace(lambda x: [x.exp(), (x * 3.0).sin()], 1)
    assert len(program.equations) == 3
    program.outputs = program.outputs[:1]
    ir.eliminate_dead_code(program)
    assert [eq.op for eq in program.equations] == [ops.EXP]


def test_multiplying_by_one_and_adding_zero_emit_no_equation():
    program = ir.Program()
    x = program.new_var("input")
    program.inputs.append(x)
    assert program.emit(ops.MUL, [x, 1.0]) is x
    assert program.emit(ops.ADD, [0.0, x]) is x
    assert program.emit(ops.MUL, [2.0, 3.0]) == 6.0  # constants fold to a number
    assert program.equations == []
    y = program.emit(ops.MUL, [x, 2.0])
    assert [(eq.op, eq.inputs, eq.out) for eq in program.equations] == [(ops.MUL, (x, 2.0), y)]


def test_arithmetic_on_variables_is_recorded_only_in_the_program_being_written():
    program, other = ir.Program(), ir.Program()
    x = program.new_var("input")
    with other.recording():
        y = x * 2.0
    assert program.equations == [] and [eq.out for eq in other.equations] == [y]
    with pytest.raises(RuntimeError, match=r"'\*' on a traced variable, while no program"):
        x * 2.0


def test_with_gradients_leaves_the_traced_program_as_it_was():
    program = ir.trace(lambda x, y: (x * y).tanh() + x.exp(), 2)
    before = (str(program), list(program.equations), set(program.products), program._count)
    differentiated = ir.with_gradients(program, program.inputs)
    assert (str(program), program.equations, program.products, program._count) == before
    assert len(differentiated.equations) > len(program.equations)
    assert differentiated.equations[: len(program.equations)] == program.equations
    again = ir.with_gradients(program, program.inputs)  # the same backward pass, written anew
    assert str(again) == str(differentiated)


def test_a_traced_variable_refuses_a_truth_value():
    program = ir.Program()
    x = program.new_var("input")
    with pytest.raises(TypeError, match="a traced variable has no truth value"):
        bool(x)
    for compare in (x.__lt__, x.__le__, x.__gt__, x.__ge__):
        with pytest.raises(TypeError, match="a traced variable has no truth value"):
            compare(0.0)
    with pytest.raises(TypeError, match="a traced variable has no truth value"):
        _ = 0.0 < x  # float's comparison gives up, Python asks x: the same refusal


def test_a_rule_that_branches_on_data_cannot_write_a_backward_pass():
    branching = ops.Op("branching", abs, lambda out, x: (1.0 if x > 0.0 else -1.0,))
    program = ir.trace(lambda x: ops.Op.__call__(branching, x), 1)
    with pytest.raises(TypeError, match="cannot be traced .*STEP or SIGN"):
        ir.with_gradients(program, program.inputs)


# -- sums of products -------------------------------------------------------------------------


def micrograd_neuron_program():
    """A neuron written as micrograd writes it: Python's `sum` of products, plus a bias."""
    w = [Value(x) for x in WEIGHTS]
    b = Value(BIAS)

    def f(x0, x1):
        return sum((wi * xi for wi, xi in zip(w, [x0, x1], strict=True)), b).tanh()

    return ir.trace(f, 2, [*w, b], input_values=[0.2, 0.4])


def test_a_sum_of_products_folds_into_one_dot():
    folded = ir.fold_sums_of_products(micrograd_neuron_program())
    assert str(folded) == (
        "{ lambda p0 p1 p2 ; x0 x1 .\n"
        "    v3 = dot p2 p0 p1 1.0 x0 x1\n"
        "    v4 = tanh v3\n"
        "  in (v4) }"
    )


def test_a_folded_program_computes_what_the_chain_computed():
    program = micrograd_neuron_program()
    folded = ir.fold_sums_of_products(program)
    point = [0.2, 0.4]
    assert evaluate(folded, [*WEIGHTS, BIAS], point) == pytest.approx(
        evaluate(program, [*WEIGHTS, BIAS], point), rel=1e-15
    )


def test_a_product_read_outside_the_sum_is_kept_and_the_program_not_changed_in_place():
    def f(x0, x1):
        shared = x0 * x1
        return (shared + x1 * x1 + x0 * 2.0) * shared

    program = ir.trace(f, 2, input_values=[0.5, 3.0])
    before = str(program)
    folded = ir.fold_sums_of_products(program)
    assert str(program) == before
    # `shared` is an equation of its own, read twice: a computed term, added after the dot.
    assert "v6 = dot x1 x0 x1 2.0\n    v4 = vsum v6 v0\n" in str(folded)
    assert evaluate(folded, [], [0.5, 3.0]) == evaluate(program, [], [0.5, 3.0])


def test_a_sum_with_one_product_stays_a_sum():
    program = ir.trace(lambda x: x * 3.0 + 1.0, 1)
    assert str(ir.fold_sums_of_products(program)) == str(program)


# -- tracing: the graph's order, and the collector -----------------------------------------------


def test_equations_come_in_the_topological_order_of_the_graph():
    x, y = Value(0.3), Value(-0.7)
    shared = x * y
    roots = [(shared + x).tanh(), shared.exp() * y, vsum([shared, x, y])]
    program = ir.from_graph(roots, [x, y], [])
    top = vsum(roots)  # one root over all results, as the trace orders them
    computed = [node for node in topological_order(top)[:-1] if node.inputs]
    assert [eq.op for eq in program.equations] == [node._op for node in computed]
    assert len({eq.out for eq in program.equations}) == len(computed)  # each node once


def test_a_deep_graph_traces_without_recursion():
    x = Value(0.5)
    y = x
    for _ in range(20_000):
        y = y * 1.0001 + 0.0001
    program = ir.from_graph([y], [x], [])
    assert len(program.equations) == 40_000
    assert evaluate(program, [], [0.5]) == [y.data]


def test_without_gc_restores_the_collector_and_leaves_frozen_objects_frozen():
    gc.freeze()  # as an application that froze its objects
    try:
        frozen = gc.get_freeze_count()
        with ir.without_gc():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    with ir.without_gc():
        made = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.is_tracked(made)  # moved to the oldest generation, still collected there


def test_a_constant_read_by_many_nodes_is_written_in_place_in_each():
    x = Value(0.3)
    c = Value(2.0)  # a leaf that is neither a parameter nor an input
    program = ir.from_graph([(x * c + c).tanh() * c], [x], [])
    assert str(program) == (
        "{ lambda  ; x0 .\n"
        "    v0 = mul x0 2.0\n"
        "    v1 = add v0 2.0\n"
        "    v2 = tanh v1\n"
        "    v3 = mul v2 2.0\n"
        "  in (v3) }"
    )


def test_a_computed_node_given_as_a_parameter_is_a_leaf_of_the_program():
    x = Value(0.3)
    w = (x * 2.0).exp()  # computed, but the program takes it as a parameter
    program = ir.from_graph([w * x], [x], [w])
    assert [eq.op for eq in program.equations] == [ops.MUL]
    assert evaluate(program, [5.0], [0.3]) == [5.0 * 0.3]


def test_a_hook_on_a_parameter_the_function_reads_is_refused_and_one_it_does_not_is_kept():
    w, unused = Value(0.5), Value(2.0)
    unused.register_hook(lambda g: None)
    program = ir.trace(lambda x: dot([w], [x]), 1, [w, unused])
    assert [eq.op for eq in program.equations] == [ops.DOT]
    w.register_hook(lambda g: 0.0)
    message = r"cannot trace a gradient hook: .*\(an input or a parameter\)"
    with pytest.raises(ValueError, match=message):
        ir.trace(lambda x: dot([w], [x]).tanh(), 1, [w, unused])
