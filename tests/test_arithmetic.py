"""The arithmetic mixin: `Value` and the traced `Var` take their operators from one class, each
applying the op its own way (a node of the graph, an equation of a program)."""

import pytest

from autograd_core import Value, ir, ops
from autograd_core.engine.arithmetic import Arithmetic

OPERATORS = [
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__",
    "__lt__", "__le__", "__gt__", "__ge__",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "sin", "cos",
]  # fmt: skip


@pytest.mark.parametrize("name", OPERATORS)
def test_value_and_var_share_each_operator(name):
    assert getattr(Value, name) is getattr(Arithmetic, name) is getattr(ir.Var, name)
    assert name not in vars(Value) and name not in vars(ir.Var)


def _program_and_input():
    program = ir.Program()
    return program, program.new_var("input")


@pytest.mark.parametrize(
    ("expression", "op", "inputs", "params"),
    [
        (lambda x: x + 2.0, ops.ADD, lambda x: (x, 2.0), ()),
        (lambda x: 2.0 - x, ops.SUB, lambda x: (2.0, x), ()),
        (lambda x: 3 * x, ops.MUL, lambda x: (3.0, x), ()),
        (lambda x: x / 4.0, ops.DIV, lambda x: (x, 4.0), ()),
        (lambda x: -x, ops.NEG, lambda x: (x,), ()),
        (lambda x: abs(x), ops.ABS, lambda x: (x,), ()),
        (lambda x: x.exp(), ops.EXP, lambda x: (x,), ()),
        (lambda x: x**3, ops.POWER_OF, lambda x: (x,), (3.0,)),
        (lambda x: x.leaky_relu(0.2), ops.LEAKY_RELU, lambda x: (x,), (0.2,)),
        (lambda x: x**x, ops.POW, lambda x: (x, x), ()),
        (lambda x: 2.0**x, ops.POW, lambda x: (2.0, x), ()),
    ],
)
def test_an_operator_on_a_var_records_the_same_op_a_value_records(expression, op, inputs, params):
    program, x = _program_and_input()
    with program.recording():
        out = expression(x)
    recorded = [(eq.op, eq.inputs, eq.out, eq.params) for eq in program.equations]
    assert recorded == [(op, inputs(x), out, params)]
    a = Value(1.5)
    node = expression(a)
    assert node._op is op and len(node.inputs) == len(inputs(x)) and node.params == params


def test_a_comparison_looks_at_the_number_of_a_value_and_refuses_a_var():
    assert (Value(1.0) < 2, Value(1.0) >= Value(1.0), 3.0 <= Value(2.0)) == (True, True, False)
    _, x = _program_and_input()
    with pytest.raises(TypeError, match="a traced variable has no truth value"):
        _ = x > Value(1.0)
