"""Value: one real number and the graph node that produced it, its operators and methods, its
checks on bad input, and the no_grad mode."""

import math
import threading

import numpy as np
import pytest

from autograd_core import Value, dot, enable_grad, no_grad, take, vsum

# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [3, 3.0, np.float64(3.0), np.float32(3.0), np.int64(3)])
def test_data_is_stored_as_a_python_float(data):
    v = Value(data)
    assert type(v.data) is float and v.data == 3.0


@pytest.mark.parametrize(
    ("data", "type_name"),
    [
        ("abc", "str"),
        (None, "NoneType"),
        (1 + 2j, "complex"),
        ([1.0], "list"),
        (Value(1.0), "Value"),
    ],
)
def test_non_real_data_raises_type_error_naming_the_type(data, type_name):
    with pytest.raises(TypeError, match=rf"got {type_name}"):
        Value(data)


def test_bool_data_is_refused_as_a_likely_slip():
    with pytest.raises(TypeError, match="got bool"):
        Value(True)


def test_label_must_be_a_str():
    with pytest.raises(TypeError, match="label must be a str, got int"):
        Value(1.0, label=7)


def test_a_leaf_has_no_op_no_inputs_and_zero_grad():
    a = Value(2.0, label="a")
    assert (a.op, a.inputs, a.grad, a.label) == ("", (), 0.0, "a")


def test_an_op_result_records_its_op_and_its_inputs_in_order():
    a, b = Value(2.0), Value(5.0)
    c = a - b
    assert (c.op, c.inputs, c.data) == ("-", (a, b), -3.0)


def test_an_op_result_keeps_the_partial_for_each_input_in_order():
    a, b = Value(2.0), Value(5.0)
    assert (a * b).local_grads == (5.0, 2.0)
    assert a.exp().local_grads == (math.exp(2.0),)
    product = dot([a, b], [b, a])
    assert product.inputs == (a, b, b, a) and product.local_grads == (5.0, 2.0, 2.0, 5.0)


def test_a_number_operand_becomes_a_constant_leaf():
    a = Value(3.0)
    c = 2 - a
    c.backward()
    assert (c.inputs[0].data, c.inputs[0].op, a.grad) == (2.0, "", -1.0)


def test_repr_shows_data_grad_and_label():
    assert repr(Value(1.5, label="w")) == "Value(data=1.5, grad=0.0, label='w')"


# -- operators, with a Value or a number on either side ---------------------------------------

A, B = Value(3.0), Value(2.0)


@pytest.mark.parametrize(
    ("expression", "data", "op"),
    [
        (lambda: A + 2, 5.0, "+"),
        (lambda: 2 + A, 5.0, "+"),
        (lambda: A - 2, 1.0, "-"),
        (lambda: 2 - A, -1.0, "-"),
        (lambda: A * 2, 6.0, "*"),
        (lambda: 2 * A, 6.0, "*"),
        (lambda: A / 2, 1.5, "/"),
        (lambda: 3 / B, 1.5, "/"),
        (lambda: A**2, 9.0, "**2"),
        (lambda: 2**A, 8.0, "pow"),
        (lambda: A**B, 9.0, "pow"),
        (lambda: -A, -3.0, "neg"),
        (lambda: abs(-A), 3.0, "abs"),
        (lambda: A.exp(), math.exp(3.0), "exp"),
        (lambda: A.log(), math.log(3.0), "log"),
        (lambda: A.sqrt(), math.sqrt(3.0), "sqrt"),
        (lambda: A.tanh(), math.tanh(3.0), "tanh"),
        (lambda: A.sigmoid(), 1 / (1 + math.exp(-3.0)), "sigmoid"),
        (lambda: (-A).relu(), 0.0, "relu"),
        (lambda: A.sin(), math.sin(3.0), "sin"),
        (lambda: A.cos(), math.cos(3.0), "cos"),
    ],
)
def test_operators_and_methods_build_the_named_op(expression, data, op):
    out = expression()
    assert out.data == pytest.approx(data, rel=1e-15)
    assert out.op == op


def test_unary_plus_is_the_value_itself():
    assert +A is A


def test_leaky_relu_default_slope_is_one_hundredth():
    assert Value(-2.0).leaky_relu().data == -0.02


def test_leaky_relu_takes_a_slope():
    assert Value(-2.0).leaky_relu(0.5).data == -1.0


def test_an_operand_that_is_not_a_number_raises_type_error():
    with pytest.raises(TypeError, match="unsupported operand"):
        Value(1.0) + "1"


# -- NumPy scalars -----------------------------------------------------------------------------


def test_numpy_scalar_times_value_is_a_value():
    assert isinstance(np.float64(2.0) * Value(3.0), Value)


def test_gradient_flows_through_a_numpy_scalar_product():
    v = Value(3.0)
    out = np.float64(2.0) * v + v * np.float32(4.0)
    out.backward()
    assert (out.data, v.grad) == (18.0, 6.0)


# -- comparisons, equality and hashing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        (lambda: Value(1.0) < Value(2.0), True),
        (lambda: Value(1.0) <= 1, True),
        (lambda: Value(1.0) > 2.0, False),
        (lambda: Value(2.0) >= Value(2.0), True),
        (lambda: 3 > Value(2.0), True),
    ],
)
def test_ordering_compares_data_and_returns_a_bool(comparison, expected):
    assert comparison() is expected


def test_ordering_with_a_non_number_raises_type_error():
    with pytest.raises(TypeError, match="cannot compare a Value with str"):
        Value(1.0) < "2"  # noqa: B015 (the comparison is what raises)


def test_equal_data_does_not_make_values_equal():
    # == is identity: two nodes holding the same number are two nodes of the graph.
    a, b = Value(1.0), Value(1.0)
    assert a == a and a != b


def test_values_with_equal_data_are_distinct_set_members_and_dict_keys():
    a, b = Value(1.0), Value(1.0)
    assert len({a, b}) == 2
    assert {a: "a", b: "b"}[b] == "b"


def test_float_gives_data():
    assert float(Value(2.5)) == 2.5


# -- detach and no_grad ------------------------------------------------------------------------


def test_detach_gives_a_leaf_with_the_same_data():
    x = Value(3.0, label="x")
    y = (x * 2).detach()
    assert (y.data, y.op, y.inputs) == (6.0, "", ())


def test_no_gradient_flows_through_a_detached_value():
    x = Value(3.0)
    (x * x.detach()).backward()
    assert x.grad == 3.0


def test_no_grad_results_are_leaves():
    x = Value(3.0)
    with no_grad():
        y = x * x + 1
    assert (y.data, y.op, y.inputs) == (10.0, "", ())


def test_no_grad_restores_recording_after_an_exception():
    x = Value(3.0)
    with pytest.raises(ZeroDivisionError), no_grad():
        x / 0
    assert (x * x).inputs == (x, x)


def test_enable_grad_records_inside_no_grad():
    x = Value(3.0)
    with no_grad(), enable_grad():
        y = x * x
    assert y.inputs == (x, x)


def test_no_grad_in_one_thread_does_not_affect_another():
    entered, checked = threading.Event(), threading.Event()
    results = {}

    def inside_no_grad():
        with no_grad():
            entered.set()
            checked.wait(timeout=10)
            results["other thread"] = (Value(1.0) + 1).op

    thread = threading.Thread(target=inside_no_grad)
    thread.start()
    entered.wait(timeout=10)
    results["main thread"] = (Value(1.0) + 1).op
    checked.set()
    thread.join()
    assert results == {"main thread": "+", "other thread": ""}


def test_a_thread_leaving_no_grad_leaves_another_threads_block_in_force():
    # Two threads inside no_grad at once; the first to leave must not turn the graph back on
    # for the one still inside, nor leave it off for anyone once both are out.
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def first():
        with no_grad():
            first_in.set()
            second_in.wait(timeout=10)
        first_out.set()

    def second():
        with no_grad():
            second_in.set()
            first_out.wait(timeout=10)
            results["still inside"] = (Value(1.0) * 2).op
        results["after"] = (Value(1.0) * 2).op

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(timeout=10)
    results["main thread, during"] = (Value(1.0) * 2).op
    for thread in threads:
        thread.join()
    results["main thread, after"] = (Value(1.0) * 2).op
    assert results == {
        "main thread, during": "*",
        "still inside": "",
        "after": "*",
        "main thread, after": "*",
    }


# -- vsum and dot: one node each, however many inputs -----------------------------------------


def test_vsum_is_one_node_with_an_input_per_term():
    xs = [Value(float(i)) for i in range(5)]
    s = vsum(xs)
    assert (s.data, s.op, s.inputs) == (10.0, "sum", tuple(xs))


def test_vsum_gradient_is_one_for_every_term():
    xs = [Value(float(i)) for i in range(5)]
    vsum(xs).backward()
    assert [x.grad for x in xs] == [1.0] * 5


def test_vsum_adds_start_as_a_constant_term():
    s = vsum([Value(1.0), 2.0], start=10)
    assert (s.data, len(s.inputs)) == (13.0, 3)


def test_vsum_accepts_a_value_as_start():
    x, bias = Value(1.0), Value(2.0)
    s = vsum([x], start=bias)
    s.backward()
    assert (s.data, bias.grad) == (3.0, 1.0)


def test_vsum_of_nothing_is_zero():
    assert vsum([]).data == 0.0


def test_vsum_of_a_non_number_raises_type_error():
    with pytest.raises(TypeError, match="vsum takes Values or real numbers, got str"):
        vsum([Value(1.0), "2"])


def test_dot_is_one_node_with_the_weights_then_the_inputs():
    ws, xs = [Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]
    d = dot(ws, xs)
    assert (d.data, d.op, d.inputs) == (11.0, "dot", (*ws, *xs))


def test_dot_gradient_of_each_weight_is_its_input_and_back():
    ws, xs = [Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]
    dot(ws, xs).backward()
    assert [v.grad for v in ws + xs] == [3.0, 4.0, 1.0, 2.0]


def test_dot_of_sequences_of_different_lengths_raises_value_error():
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        dot([Value(1.0), Value(2.0)], [Value(3.0)])


# -- traps made loud ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [0.0, -0.0, 2.5, -1.0, math.nan])
def test_bool_is_whether_the_number_is_non_zero_as_in_pytorch(torch, data):
    assert bool(Value(data)) is bool(torch.tensor(data, dtype=torch.float64)) is (data != 0.0)


def test_if_on_a_zero_value_skips_the_branch():
    taken = False
    if Value(0.0):
        taken = True
    assert not taken


def test_an_int_too_large_for_a_float_raises_value_error():
    with pytest.raises(ValueError, match="too large for a float"):
        Value(10**400)


def test_the_too_large_error_does_not_print_the_number():
    with pytest.raises(ValueError) as error:
        Value(10**5000)
    assert "0000" not in str(error.value)


@pytest.mark.parametrize("flip", [False, True], ids=["value * array", "array * value"])
def test_value_times_an_array_says_what_to_do_instead(flip):
    v, array = Value(2.0), np.ones(3)
    with pytest.raises(TypeError, match=r"NumPy array.*one number.*each element"):
        _ = array * v if flip else v * array


def test_value_plus_a_list_is_still_a_plain_type_error():
    with pytest.raises(TypeError):
        _ = Value(2.0) + [1.0]


def test_backward_on_a_result_computed_under_no_grad_raises_naming_the_op():
    x = Value(3.0)
    with no_grad():
        y = x * x
    with pytest.raises(RuntimeError, match=r"'\*' under no_grad\(\).*no graph"):
        y.backward()
    assert x.grad == 0.0


def test_backward_on_a_plain_leaf_is_still_allowed():
    x = Value(3.0)
    x.backward()
    assert x.grad == 1.0


# -- take: the row of a table an index chooses ------------------------------------------------


def table(n_rows: int = 4, width: int = 3) -> list[list[Value]]:
    return [[Value(0.5 * r - 0.25 * c) for c in range(width)] for r in range(n_rows)]


def test_take_with_a_number_is_the_row_itself():
    rows = table()
    assert take(rows, 2) is rows[2]
    assert take(rows, 3.0) is rows[3]
    assert take(rows[1], 0) is rows[1][0]


def test_take_with_a_value_index_sends_the_gradient_to_the_chosen_row_only():
    rows = table()
    chosen = take(rows, Value(2.0))
    assert [v.op for v in chosen] == ["take"] * 3
    assert [v.data for v in chosen] == [v.data for v in rows[2]]
    (chosen[0] * 2.0 + chosen[1] * chosen[1]).backward()
    expected = [[0.0] * 3 for _ in rows]
    expected[2] = [2.0, 2.0 * rows[2][1].data, 0.0]
    assert [[v.grad for v in row] for row in rows] == expected


def test_take_gives_pytorchs_embedding_gradient(torch):
    rows = table(5, 4)
    ids = [3, 0, 3, 4]
    picked = [take(rows, Value(float(i))) for i in ids]
    loss = vsum([(v * (k + 1.0)).tanh() for k, row in enumerate(picked) for v in row])
    loss.backward()
    weight = torch.tensor([[v.data for v in row] for row in rows], dtype=torch.float64)
    weight.requires_grad_(True)
    out = torch.nn.functional.embedding(torch.tensor(ids), weight)
    scale = torch.arange(1.0, 5.0, dtype=torch.float64)[:, None]
    theirs = (out * scale).tanh().sum()
    theirs.backward()
    assert loss.data == pytest.approx(theirs.item(), abs=1e-12)
    ours = torch.tensor([[v.grad for v in row] for row in rows], dtype=torch.float64)
    assert torch.allclose(ours, weight.grad, rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("index", [4, -1, 1.5, math.nan, Value(4.0), Value(-1.0)])
def test_take_refuses_an_index_that_is_not_a_row(index):
    with pytest.raises(IndexError, match=r"take: index .* is not a row of a table of 4 rows"):
        take(table(), index)


def test_take_refuses_an_index_that_is_not_a_number():
    with pytest.raises(TypeError, match="take: the index must be a number or a Value"):
        take(table(), "2")
