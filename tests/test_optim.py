"""nn.optim: every optimizer and schedule against torch.optim, step for step."""

import math

import pytest

from autograd_core import Value
from nn import MLP
from nn.optim import SGD, Adam, CosineDecay, LinearDecay, Optimizer, RMSprop, StepDecay

START = [0.5, -1.5, 2.0, 0.0, -0.25]
STEPS = 12


def gradient(x: float, i: int) -> float:
    """A gradient that depends on where the parameter is, so the trajectories can diverge."""
    return math.cos(3.0 * x + i) + 0.5 * x


def run_ours(optimizer_class, options):
    params = [Value(x) for x in START]
    optimizer = optimizer_class(params, **options)
    trajectory = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        for i, p in enumerate(params):
            p.grad = gradient(p.data, i)
        optimizer.step()
        trajectory.append([p.data for p in params])
    return trajectory


def run_torch(torch, optimizer_class, options):
    param = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([param], **options)
    trajectory = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        xs = param.detach().tolist()
        param.grad = torch.tensor([gradient(x, i) for i, x in enumerate(xs)], dtype=torch.float64)
        optimizer.step()
        trajectory.append(param.detach().tolist())
    return trajectory


def assert_same_trajectory(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        assert a == pytest.approx(b, abs=1e-12, rel=0), f"step {step}"
    # The parameters must actually have moved, or the comparison proves nothing.
    assert ours[-1] != START


@pytest.mark.parametrize(
    "options",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "weight_decay": 0.01},
        {"lr": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
    ],
)
def test_sgd_matches_torch(torch, options):
    assert_same_trajectory(run_ours(SGD, options), run_torch(torch, torch.optim.SGD, options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"lr": 0.05},
        {"lr": 0.05, "betas": (0.8, 0.99)},
        {"lr": 0.05, "eps": 1e-3},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.2, "betas": (0.5, 0.9), "eps": 1e-2, "weight_decay": 0.01},
    ],
)
def test_adam_matches_torch(torch, options):
    assert_same_trajectory(run_ours(Adam, options), run_torch(torch, torch.optim.Adam, options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"lr": 0.05, "alpha": 0.9},
        {"lr": 0.05, "eps": 1e-3},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.02, "alpha": 0.5, "eps": 1e-4, "momentum": 0.3},
    ],
)
def test_rmsprop_matches_torch(torch, options):
    assert_same_trajectory(
        run_ours(RMSprop, options), run_torch(torch, torch.optim.RMSprop, options)
    )


def test_sgd_without_momentum_is_plain_gradient_descent():
    p = Value(1.0)
    p.grad = 4.0
    SGD([p], lr=0.25).step()
    assert p.data == 0.0


def test_adam_first_step_moves_each_parameter_by_about_lr():
    # Bias correction makes step 1 equal to lr * g / (|g| + eps): the size of g drops out.
    params = [Value(0.0), Value(0.0)]
    params[0].grad, params[1].grad = 1000.0, -0.001
    Adam(params, lr=0.1).step()
    assert params[0].data == pytest.approx(-0.1)
    assert params[1].data == pytest.approx(0.1, rel=1e-4)


def test_zero_grad_clears_every_gradient():
    params = [Value(1.0), Value(2.0)]
    for p in params:
        p.grad = 3.0
    SGD(params, lr=0.1).zero_grad()
    assert [p.grad for p in params] == [0.0, 0.0]


def test_step_reads_a_value_gradient_from_create_graph():
    x = Value(3.0)
    (x * x).backward(create_graph=True)
    assert isinstance(x.grad, Value)
    SGD([x], lr=0.5).step()
    assert x.data == 0.0


def test_lr_is_settable_and_used_by_the_next_step():
    p = Value(1.0)
    optimizer = SGD([p], lr=0.1)
    optimizer.lr = 0.5
    p.grad = 1.0
    optimizer.step()
    assert p.data == 0.5


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda ps: SGD(ps, lr=-0.1), "lr"),
        (lambda ps: SGD(ps, lr=math.inf), "lr"),
        (lambda ps: SGD(ps, lr=math.nan), "lr"),
        (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
        (lambda ps: SGD(ps, lr=0.1, weight_decay=-1.0), "weight_decay"),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda ps: Adam(ps, betas=(0.9,)), "betas"),
        (lambda ps: Adam(ps, eps=-1e-8), "eps"),
        (lambda ps: Adam(ps, weight_decay=-0.1), "weight_decay"),
        (lambda ps: RMSprop(ps, alpha=1.5), "alpha"),
        (lambda ps: RMSprop(ps, eps=-1.0), "eps"),
        (lambda ps: RMSprop(ps, momentum=-0.9), "momentum"),
    ],
)
def test_bad_hyper_parameter_is_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make([Value(1.0)])


def test_setting_a_negative_lr_is_refused():
    optimizer = Adam([Value(1.0)])
    with pytest.raises(ValueError, match="lr"):
        optimizer.lr = -1.0
    assert optimizer.lr == 1e-3


def test_a_non_number_lr_is_a_type_error():
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        SGD([Value(1.0)], lr="0.1")


def test_empty_parameter_list_is_refused():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


def test_a_parameter_listed_twice_is_refused():
    p = Value(1.0)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)


def test_parameters_must_be_values():
    with pytest.raises(TypeError, match="takes Values, got float"):
        SGD([1.0], lr=0.1)


@pytest.mark.parametrize("optimizer_class", [SGD, Adam, RMSprop])
def test_a_model_instead_of_its_parameters_says_to_pass_model_parameters(optimizer_class):
    model = MLP(2, [3, 1], seed=0)
    message = rf"{optimizer_class.__name__} takes the parameters to update, not the MLP itself: "
    with pytest.raises(TypeError, match=message + r"pass model\.parameters\(\)"):
        optimizer_class(model, lr=0.1)
    # The message's advice works.
    assert optimizer_class(model.parameters(), lr=0.1).params == model.parameters()


@pytest.mark.parametrize("params", [Value(1.0), 1.0, None])
def test_something_not_iterable_is_refused_naming_what_it_got(params):
    with pytest.raises(
        TypeError, match=rf"takes an iterable of Values.*got {type(params).__name__}"
    ):
        Adam(params)


def test_every_optimizer_is_one_optimizer_type_with_step_and_zero_grad():
    for optimizer_class in (SGD, Adam, RMSprop):
        assert issubclass(optimizer_class, Optimizer)
    p = Value(1.0)
    p.grad = 2.0
    base = Optimizer([p], lr=0.1)
    base.zero_grad()
    assert p.grad == 0.0
    with pytest.raises(NotImplementedError):
        base.step()  # the update rule is the subclass's


@pytest.mark.parametrize("lr", [True, False])
def test_a_bool_is_not_a_learning_rate(lr):
    with pytest.raises(TypeError, match="lr must be a real number, got bool"):
        SGD([Value(1.0)], lr=lr)


# -- schedules --------------------------------------------------------------------------------

EPOCHS = 25


def our_rates(make_schedule, lr=0.1):
    optimizer = SGD([Value(0.0)], lr=lr)
    schedule = make_schedule(optimizer)
    rates = [optimizer.lr]
    for _ in range(EPOCHS):
        schedule.step()
        rates.append(optimizer.lr)
    return rates


def torch_rates(torch, make_scheduler, lr=0.1):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(EPOCHS):
        optimizer.step()  # no gradient: changes nothing, but keeps torch's call order
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (dict(total_epochs=10), dict(start_factor=1.0, end_factor=0.0, total_iters=10)),
        (
            dict(total_epochs=7, end_factor=0.1),
            dict(start_factor=1.0, end_factor=0.1, total_iters=7),
        ),
        (
            dict(total_epochs=5, start_factor=0.25, end_factor=1.0),
            dict(start_factor=0.25, end_factor=1.0, total_iters=5),
        ),
    ],
)
def test_linear_decay_matches_torch_linear_lr(torch, ours, theirs):
    expected = torch_rates(torch, lambda o: torch.optim.lr_scheduler.LinearLR(o, **theirs))
    assert our_rates(lambda o: LinearDecay(o, **ours)) == pytest.approx(expected, abs=1e-12, rel=0)


@pytest.mark.parametrize(("step_size", "gamma"), [(5, 0.1), (3, 0.5), (1, 0.9)])
def test_step_decay_matches_torch_step_lr(torch, step_size, gamma):
    expected = torch_rates(torch, lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma))
    assert our_rates(lambda o: StepDecay(o, step_size, gamma)) == pytest.approx(
        expected, abs=1e-12, rel=0
    )


@pytest.mark.parametrize(("total_epochs", "min_lr"), [(10, 0.0), (25, 0.001), (8, 0.01)])
def test_cosine_decay_matches_torch_cosine_annealing_lr(torch, total_epochs, min_lr):
    # EPOCHS runs past total_epochs for two of these: torch's cosine climbs again, so does ours.
    expected = torch_rates(
        torch, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total_epochs, min_lr)
    )
    assert our_rates(lambda o: CosineDecay(o, total_epochs, min_lr)) == pytest.approx(
        expected, abs=1e-12, rel=0
    )


def test_schedule_sets_the_rate_the_optimizer_steps_with():
    p = Value(0.0)
    optimizer = SGD([p], lr=1.0)
    schedule = StepDecay(optimizer, step_size=1, gamma=0.5)
    schedule.step()
    p.grad = -1.0
    optimizer.step()
    assert (schedule.epoch, schedule.lr, p.data) == (1, 0.5, 0.5)


def test_cosine_decay_reaches_min_lr_at_total_epochs():
    rates = our_rates(lambda o: CosineDecay(o, total_epochs=10, min_lr=0.01), lr=0.5)
    assert rates[0] == 0.5
    assert rates[10] == pytest.approx(0.01)
    assert rates[:11] == sorted(rates[:11], reverse=True)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda o: LinearDecay(o, total_epochs=0), "total_epochs"),
        (lambda o: LinearDecay(o, total_epochs=10, start_factor=0.0), "start_factor"),
        (lambda o: LinearDecay(o, total_epochs=10, end_factor=1.5), "end_factor"),
        (lambda o: StepDecay(o, step_size=2.5), "step_size"),
        (lambda o: StepDecay(o, step_size=2, gamma=-0.1), "gamma"),
        (lambda o: CosineDecay(o, total_epochs=-3), "total_epochs"),
        (lambda o: CosineDecay(o, total_epochs=10, min_lr=-1.0), "min_lr"),
    ],
)
def test_bad_schedule_argument_is_refused_by_name(make, name):
    optimizer = SGD([Value(0.0)], lr=0.1)
    with pytest.raises(ValueError, match=name):
        make(optimizer)
    assert optimizer.lr == 0.1
