"""Tests of tinygrad_course.optim: update rules by hand, against torch.optim, state, schedulers.

Hand-computed tests write each update's arithmetic out in the test. The torch comparisons run
five steps on a small float64 least-squares problem with the same start, so results agree to
rounding (rtol 1e-10).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn, optim
from tinygrad_course.optim import lr_scheduler

RTOL, ATOL = 1e-10, 1e-12


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def param(*values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def set_grad(p, *values):
    p.grad = tg.tensor(np.array(values, dtype=np.float64))


# --- update rules by hand ----------------------------------------------------------------
def test_sgd_plain_and_weight_decay_by_hand():
    p = param(1.0, -2.0)
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, 0.5, 1.0)
    opt.step()
    assert_close(p.data, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 1.0])

    p = param(1.0, -2.0)
    opt = optim.SGD([p], lr=0.1, weight_decay=0.2)
    set_grad(p, 0.5, 1.0)
    opt.step()
    # g = grad + wd * p = (0.5 + 0.2, 1.0 - 0.4)
    assert_close(p.data, [1.0 - 0.1 * 0.7, -2.0 - 0.1 * 0.6])

    p = param(1.0)
    opt = optim.SGD([p], lr=0.1, maximize=True)
    set_grad(p, 0.5)
    opt.step()
    assert_close(p.data, [1.0 + 0.1 * 0.5])  # gradient ascent


def test_sgd_momentum_dampening_and_nesterov_by_hand():
    g = 0.5
    for options, first, second in [
        # buffer b1 = g; b2 = 0.9 b1 + (1 - dampening) g; the update uses b (or g + 0.9 b for Nesterov)
        (dict(momentum=0.9), g, 0.9 * g + g),
        (dict(momentum=0.9, dampening=0.5), g, 0.9 * g + 0.5 * g),
        (dict(momentum=0.9, nesterov=True), g + 0.9 * g, g + 0.9 * (0.9 * g + g)),
    ]:
        p = param(1.0)
        opt = optim.SGD([p], lr=0.1, **options)
        set_grad(p, g)
        opt.step()
        assert_close(p.data, [1.0 - 0.1 * first], rtol=1e-14)
        set_grad(p, g)
        opt.step()
        assert_close(p.data, [1.0 - 0.1 * first - 0.1 * second], rtol=1e-14)


def test_course_worked_example_gradient_descent():
    """COURSE.md: f(x) = 3x^2 + 5x + 4 from x = 1 with lr 0.01 gives 0.89, 0.7866, 0.689404."""
    x = param(1.0)
    opt = optim.SGD([x], lr=0.01)
    iterates = []
    for _ in range(3):
        opt.zero_grad()
        (3 * x ** 2 + 5 * x + 4).sum().backward()
        opt.step()
        iterates.append(x.item())
    assert_close(iterates, [0.89, 0.7866, 0.689404], rtol=1e-12)


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = param(1.0, -1.0)
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = np.array([0.5, -2.0]), np.array([-1.0, 1.0])
    set_grad(p, *g1)
    opt.step()
    # step 1: m = 0.1 g1, v = 0.001 g1^2; the bias corrections give m^ = g1, v^ = g1^2
    expected = np.array([1.0, -1.0]) - lr * g1 / (np.abs(g1) + eps)
    assert_close(p.data, expected, rtol=1e-14)
    set_grad(p, *g2)
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1 ** 2 + (1 - b2) * g2 ** 2
    expected = expected - lr / (1 - b1 ** 2) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** 2) + eps)
    assert_close(p.data, expected, rtol=1e-14)
    assert opt.state[p]["step"] == 2


def test_adam_amsgrad_and_l2_by_hand():
    p = param(2.0)
    opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.5), eps=0.0, weight_decay=0.25, amsgrad=True)
    set_grad(p, 1.0)
    opt.step()
    g1 = 1.0 + 0.25 * 2.0  # L2 term added to the gradient
    p1 = 2.0 - 0.1 * g1 / abs(g1)
    assert_close(p.data, [p1], rtol=1e-14)
    set_grad(p, 0.0)
    opt.step()
    g2 = 0.0 + 0.25 * p1
    m = 0.5 * 0.5 * g1 + 0.5 * g2
    v = 0.5 * 0.5 * g1 ** 2 + 0.5 * g2 ** 2
    v_max = max(0.5 * g1 ** 2, v)  # amsgrad keeps the largest second moment seen
    p2 = p1 - 0.1 / (1 - 0.25) * m / (math.sqrt(v_max) / math.sqrt(1 - 0.25))
    assert_close(p.data, [p2], rtol=1e-14)


def test_adamw_decouples_weight_decay_by_hand():
    p = param(2.0)
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5, eps=0.0)
    set_grad(p, 3.0)
    opt.step()
    # p <- p (1 - lr wd), then the plain Adam step whose first update is lr * sign(g)
    assert_close(p.data, [2.0 * (1 - 0.1 * 0.5) - 0.1], rtol=1e-14)
    assert optim.AdamW([param(1.0)]).defaults["weight_decay"] == 1e-2


def test_adagrad_by_hand():
    p = param(1.0)
    opt = optim.Adagrad([p], lr=0.5, lr_decay=0.1, initial_accumulator_value=0.25, eps=0.0)
    set_grad(p, 2.0)
    opt.step()
    s1 = 0.25 + 2.0 ** 2
    p1 = 1.0 - 0.5 / (1 + 0 * 0.1) * 2.0 / math.sqrt(s1)
    assert_close(p.data, [p1], rtol=1e-14)
    set_grad(p, -1.0)
    opt.step()
    s2 = s1 + 1.0
    p2 = p1 - 0.5 / (1 + 1 * 0.1) * -1.0 / math.sqrt(s2)  # the rate decays with the step count
    assert_close(p.data, [p2], rtol=1e-14)


def test_adadelta_two_steps_by_hand():
    p = param(1.0)
    opt = optim.Adadelta([p], lr=0.5, rho=0.8, eps=1e-2)
    set_grad(p, 2.0)
    opt.step()
    v1 = 0.2 * 2.0 ** 2
    d1 = math.sqrt(0.0 + 1e-2) / math.sqrt(v1 + 1e-2) * 2.0
    u1 = 0.2 * d1 ** 2
    p1 = 1.0 - 0.5 * d1
    assert_close(p.data, [p1], rtol=1e-14)
    set_grad(p, -1.0)
    opt.step()
    v2 = 0.8 * v1 + 0.2 * 1.0
    d2 = math.sqrt(u1 + 1e-2) / math.sqrt(v2 + 1e-2) * -1.0  # the step's units come from past steps
    assert_close(p.data, [p1 - 0.5 * d2], rtol=1e-14)


def test_rmsprop_plain_centered_and_momentum_by_hand():
    p = param(1.0)
    opt = optim.RMSprop([p], lr=0.01, alpha=0.9, eps=0.0)
    set_grad(p, 2.0)
    opt.step()
    assert_close(p.data, [1.0 - 0.01 * 2.0 / math.sqrt(0.1 * 4.0)], rtol=1e-14)

    p = param(1.0)
    opt = optim.RMSprop([p], lr=0.01, alpha=0.9, eps=0.0, centered=True, momentum=0.5)
    set_grad(p, 2.0)
    opt.step()
    v, mean = 0.1 * 4.0, 0.1 * 2.0
    b1 = 2.0 / math.sqrt(v - mean ** 2)  # centered: divide by the running standard deviation
    assert_close(p.data, [1.0 - 0.01 * b1], rtol=1e-14)
    set_grad(p, 1.0)
    opt.step()
    v, mean = 0.9 * v + 0.1 * 1.0, 0.9 * mean + 0.1 * 1.0
    b2 = 0.5 * b1 + 1.0 / math.sqrt(v - mean ** 2)
    assert_close(p.data, [1.0 - 0.01 * b1 - 0.01 * b2], rtol=1e-14)


# --- against torch.optim ----------------------------------------------------------------------
A = np.random.default_rng(0).standard_normal((6, 3))
TARGET = np.random.default_rng(1).standard_normal((6, 2))
W0 = np.random.default_rng(2).standard_normal((3, 2))
B0 = np.random.default_rng(3).standard_normal(2)
UNUSED0 = np.array([1.0, 2.0])  # in the optimizer but not in the loss: its grad stays None


def run_ours(make_optimizer, steps=5, groups=False):
    w, b, unused = nn.Parameter(W0.copy()), nn.Parameter(B0.copy()), nn.Parameter(UNUSED0.copy())
    params = [{"params": [w]}, {"params": [b, unused], "lr": 0.02}] if groups else [w, b, unused]
    opt = make_optimizer(optim, params)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((tg.tensor(A) @ w + b - tg.tensor(TARGET)) ** 2).sum() * 0.5
        loss.backward()
        opt.step()
        history.append((w.numpy(force=True).copy(), b.numpy(force=True).copy(), unused.numpy(force=True).copy()))
    return history


def run_torch(torch, make_optimizer, steps=5, groups=False):
    w, b = torch.tensor(W0, requires_grad=True), torch.tensor(B0, requires_grad=True)
    unused = torch.tensor(UNUSED0, requires_grad=True)
    params = [{"params": [w]}, {"params": [b, unused], "lr": 0.02}] if groups else [w, b, unused]
    opt = make_optimizer(torch.optim, params)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((torch.tensor(A) @ w + b - torch.tensor(TARGET)) ** 2).sum() * 0.5
        loss.backward()
        opt.step()
        history.append((w.detach().numpy().copy(), b.detach().numpy().copy(), unused.detach().numpy().copy()))
    return history


TORCH_CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.05, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.2)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.2, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-3)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.3, 0.9), eps=1e-3, weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, betas=(0.5, 0.9), momentum_decay=0.1, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.5), eps=1e-3, weight_decay=0.1)),  # rho_t > 5 from step 1
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.6), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, options", TORCH_CASES,
                         ids=[f"{n}-" + ",".join(f"{k}={v}" for k, v in o.items()) for n, o in TORCH_CASES])
def test_optimizer_matches_torch(name, options):
    torch = pytest.importorskip("torch")
    ours = run_ours(lambda lib, params: getattr(lib, name)(params, **options))
    theirs = run_torch(torch, lambda lib, params: getattr(lib, name)(params, **options))
    # torch keeps NAdam's running product of momenta in float32 (its default scalar dtype), we in float64
    rtol, atol = (1e-8, 1e-8) if name == "NAdam" else (RTOL, ATOL)
    for step, (mine, ref) in enumerate(zip(ours, theirs)):
        for a, b in zip(mine, ref):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"after step {step + 1}")
    assert_close(ours[-1][2], UNUSED0, rtol=0, atol=0)  # a parameter without grad is not touched


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.05))])
def test_param_groups_with_their_own_options_match_torch(name, options):
    torch = pytest.importorskip("torch")
    ours = run_ours(lambda lib, params: getattr(lib, name)(params, **options), groups=True)
    theirs = run_torch(torch, lambda lib, params: getattr(lib, name)(params, **options), groups=True)
    for mine, ref in zip(ours, theirs):
        for a, b in zip(mine, ref):
            assert_close(a, b)


# --- mechanics -----------------------------------------------------------------------------------
ALL_OPTIMIZERS = [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.1, centered=True, momentum=0.9),
    lambda ps: optim.Adadelta(ps, lr=0.5, weight_decay=0.01),
    lambda ps: optim.Adamax(ps, lr=0.1, weight_decay=0.01),
    lambda ps: optim.NAdam(ps, lr=0.1, weight_decay=0.01, decoupled_weight_decay=True),
    lambda ps: optim.RAdam(ps, lr=0.1, betas=(0.9, 0.5), weight_decay=0.01, decoupled_weight_decay=True),
]
OPTIMIZER_IDS = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam"]


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=OPTIMIZER_IDS)
def test_each_step_bumps_the_version_once_and_guards_saved_graphs(make):
    w = nn.Parameter(W0.copy())
    opt = make([w])
    x = tg.tensor(A)
    (x @ w).sum().backward()
    version = w._version
    stale = (w * 2.0).sum()  # saves w's array for its backward
    opt.step()
    assert w._version == version + 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        stale.backward()


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=OPTIMIZER_IDS)
def test_state_dict_resume_equals_uninterrupted_run(make):
    def train_steps(w, opt, n):
        for _ in range(n):
            opt.zero_grad()
            (((tg.tensor(A) @ w) - tg.tensor(TARGET)) ** 2).sum().backward()
            opt.step()

    w_full = nn.Parameter(W0.copy())
    opt_full = make([w_full])
    train_steps(w_full, opt_full, 5)

    w = nn.Parameter(W0.copy())
    opt = make([w])
    train_steps(w, opt, 2)
    saved = opt.state_dict()
    state_arrays = [v for s in saved["state"].values() for v in s.values() if isinstance(v, np.ndarray)]
    train_steps(w, opt, 1)  # the saved dict holds copies: later steps do not change it
    assert all(np.array_equal(a, b) for a, b in zip(
        state_arrays, [v for s in saved["state"].values() for v in s.values() if isinstance(v, np.ndarray)]))

    w_resumed = nn.Parameter(W0.copy())
    train_steps(w_resumed, make([w_resumed]), 2)  # same weights as at the save
    opt_resumed = make([w_resumed])
    opt_resumed.load_state_dict(saved)
    train_steps(w_resumed, opt_resumed, 3)
    assert_close(w_resumed.data, w_full.data, rtol=0, atol=0)


def test_load_state_dict_accepts_values_that_went_through_a_file():
    """After a checkpoint, numbers are 0-d arrays and indices are strings; types are restored."""
    w = nn.Parameter(W0.copy())
    opt = optim.Adam([w], lr=0.5, betas=(0.8, 0.9))
    w.grad = tg.tensor(np.ones_like(W0))
    opt.step()
    sd = opt.state_dict()
    as_file = {"state": {str(k): {n: np.asarray(v) for n, v in s.items()} for k, s in sd["state"].items()},
               "param_groups": [{k: np.asarray(v) for k, v in g.items()} for g in sd["param_groups"]]}
    fresh = optim.Adam([w])
    fresh.load_state_dict(as_file)
    group = fresh.param_groups[0]
    assert group["lr"] == 0.5 and type(group["lr"]) is float
    assert group["betas"] == (0.8, 0.9) and type(group["betas"]) is tuple
    assert group["amsgrad"] is False
    assert fresh.state[w]["step"] == 1 and type(fresh.state[w]["step"]) is int
    assert_close(fresh.state[w]["exp_avg"], opt.state[w]["exp_avg"])


def test_load_state_dict_rejects_a_different_layout():
    w, b = nn.Parameter(W0.copy()), nn.Parameter(B0.copy())
    opt = optim.SGD([w, b], lr=0.1, momentum=0.9)
    w.grad, b.grad = tg.tensor(np.ones_like(W0)), tg.tensor(np.ones_like(B0))
    opt.step()
    with pytest.raises(ValueError, match="param group 0 has 2 parameters"):
        optim.SGD([w], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([b, w], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="param groups"):
        optim.SGD([{"params": [w]}, {"params": [b]}], lr=0.1).load_state_dict(opt.state_dict())


def test_zero_grad_step_closure_and_skipping():
    w, frozen = nn.Parameter(W0.copy()), nn.Parameter(B0.copy())
    opt = optim.SGD([w, frozen], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (tg.tensor(A) @ w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, tg.Tensor)
    assert_close(frozen.data, B0, rtol=0, atol=0)
    assert frozen not in opt.state or not opt.state[frozen]
    opt.zero_grad(set_to_none=False)
    assert not w.grad.data.any()
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("bad", [
    lambda ps: optim.SGD(ps, lr=-0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5),
    lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1),
    lambda ps: optim.SGD(ps, lr=0.1, nesterov=True),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda ps: optim.Adam(ps, lr=-1e-3),
    lambda ps: optim.Adam(ps, betas=(1.0, 0.999)),
    lambda ps: optim.Adam(ps, betas=(0.9,)),
    lambda ps: optim.Adam(ps, eps=-1e-8),
    lambda ps: optim.AdamW(ps, weight_decay=-0.1),
    lambda ps: optim.Adagrad(ps, lr_decay=-0.1),
    lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1),
    lambda ps: optim.RMSprop(ps, alpha=-0.5),
    lambda ps: optim.RMSprop(ps, momentum=-0.5),
    lambda ps: optim.Adadelta(ps, rho=1.5),
    lambda ps: optim.Adamax(ps, betas=(0.9, 1.0)),
    lambda ps: optim.NAdam(ps, momentum_decay=-1.0),
    lambda ps: optim.RAdam(ps, eps=-1.0),
    lambda ps: optim.Adadelta(ps, eps=-1.0),
    lambda ps: optim.SGD([{"params": ps, "lr": -1}], lr=0.1),
    lambda ps: optim.SGD([], lr=0.1),
    lambda ps: optim.SGD(ps + ps, lr=0.1),
])
def test_invalid_hyper_parameters_raise_value_error(bad):
    with pytest.raises(ValueError):
        bad([nn.Parameter(W0.copy())])


def test_invalid_params_raise():
    w = nn.Parameter(W0.copy())
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="unknown option"):
        optim.SGD([{"params": [w], "momentum_typo": 0.9}], lr=0.1)
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="more than one param group"):
        opt.add_param_group({"params": [w]})


def test_optimizer_trains_a_module_on_float32():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    x = tg.tensor(np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32))
    y = tg.tensor((x.data[:, 0] * x.data[:, 1] > 0).astype(np.int64))
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(s["exp_avg"].dtype == np.float32 for s in opt.state.values())


# --- learning-rate schedulers ---------------------------------------------------------------------
def lr_sequence(lib, make_scheduler, lrs=(0.1, 0.03), epochs=10, make_tensor=None):
    params = [{"params": [make_tensor()], "lr": lr} for lr in lrs]
    opt = lib.SGD(params, lr=lrs[0])
    schedulers = make_scheduler(lib.lr_scheduler, opt)
    schedulers = schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]
    history = [list(schedulers[-1].get_last_lr())]
    for _ in range(epochs):
        opt.step()
        for s in schedulers:
            s.step()
        history.append(list(schedulers[-1].get_last_lr()))
        assert history[-1] == [g["lr"] for g in opt.param_groups]
    return history


SCHEDULER_CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 8], gamma=0.5),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda epoch: 0.95 ** epoch),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=4, eta_min=0.01),
    "CosineAnnealingLR-long": lambda m, o: m.CosineAnnealingLR(o, T_max=20),
    "chained": lambda m, o: [m.StepLR(o, step_size=2, gamma=0.5), m.ExponentialLR(o, gamma=0.9)],
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=4),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=3),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, eta_min=0.001),
    "CosineAnnealingWarmRestarts-T_mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=3), m.CosineAnnealingLR(o, T_max=7, eta_min=0.001)],
        milestones=[3]),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=2), m.ExponentialLR(o, gamma=0.9), m.StepLR(o, 2, gamma=0.5)],
        milestones=[2, 5]),
    "SequentialLR-closed-forms": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=2), m.MultiStepLR(o, milestones=[0, 1, 3]),
            m.ConstantLR(o, factor=0.2, total_iters=2), m.CosineAnnealingWarmRestarts(o, T_0=2)],
        milestones=[2, 5, 7]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1 - 0.05 * e]),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=6, power=2.0),
    "SequentialLR-polynomial": lambda m, o: m.SequentialLR(
        o, [m.ExponentialLR(o, gamma=0.5), m.PolynomialLR(o, total_iters=4, power=0.5)], milestones=[3]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=4), m.ExponentialLR(o, gamma=0.9)]),
}


@pytest.mark.parametrize("name", list(SCHEDULER_CASES))
def test_scheduler_matches_torch(name):
    torch = pytest.importorskip("torch")
    make = SCHEDULER_CASES[name]
    ours = lr_sequence(optim, make, make_tensor=lambda: nn.Parameter(np.zeros(1)))
    theirs = lr_sequence(torch.optim, make, make_tensor=lambda: torch.zeros(1, requires_grad=True))
    assert_close(np.array(ours), np.array(theirs), rtol=1e-12, atol=1e-15)


def test_time_based_decay_follows_its_formula():
    history = lr_sequence(optim, lambda m, o: m.TimeBasedDecay(o, decay=0.5),
                          make_tensor=lambda: nn.Parameter(np.zeros(1)))
    for t, lrs in enumerate(history):
        assert_close(lrs, [0.1 / (1 + 0.5 * t), 0.03 / (1 + 0.5 * t)], rtol=1e-15)


def test_scheduler_state_validation_and_resume():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    assert opt.param_groups[0]["initial_lr"] == 1.0 and sched.last_epoch == 0
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3

    opt2 = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched2 = lr_scheduler.StepLR(opt2, step_size=2, gamma=0.1)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr() == pytest.approx([0.01])

    with pytest.raises(ValueError):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError):
        lr_scheduler.MultiStepLR(opt, milestones=[5, 2])
    with pytest.raises(ValueError):
        lr_scheduler.TimeBasedDecay(opt, decay=-1)
    with pytest.raises(TypeError):
        lr_scheduler.ExponentialLR("not an optimizer", gamma=0.5)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0), gamma=0.5, last_epoch=3)


# --- schedulers that need more than an epoch count -------------------------------------------------
def one_cycle_sequence(lib, make_optimizer, make_tensor, steps, scheduler="OneCycleLR", **options):
    """(lrs, momenta) before the first step and after each scheduler step."""
    opt = make_optimizer(lib, [{"params": [make_tensor()]}, {"params": [make_tensor()], "lr": 0.5}])
    sched = getattr(lib.lr_scheduler, scheduler)(opt, **options)
    key = "betas" if "betas" in opt.defaults else "momentum" if "momentum" in opt.defaults else None

    def momenta():
        return [g[key][0] if key == "betas" else g[key] for g in opt.param_groups] if key else []

    history = [(sched.get_last_lr(), momenta())]
    for _ in range(steps):
        opt.step()
        sched.step()
        history.append((sched.get_last_lr(), momenta()))
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    return history


ONE_CYCLE_CASES = {
    "sgd-cos": (lambda m, ps: m.SGD(ps, lr=0.1, momentum=0.9), dict(max_lr=1.0, total_steps=10)),
    "sgd-linear-three-phase": (lambda m, ps: m.SGD(ps, lr=0.1, momentum=0.9),
                               dict(max_lr=[1.0, 0.2], total_steps=12, anneal_strategy="linear", three_phase=True,
                                    pct_start=0.25, div_factor=10.0, final_div_factor=100.0)),
    "adam-betas-epochs": (lambda m, ps: m.Adam(ps, lr=0.1), dict(max_lr=0.01, epochs=3, steps_per_epoch=4,
                                                                 base_momentum=0.8, max_momentum=[0.9, 0.95])),
    "adamw-no-momentum-cycling": (lambda m, ps: m.AdamW(ps, lr=0.1),
                                  dict(max_lr=0.01, total_steps=7, cycle_momentum=False, pct_start=0.5)),
}


@pytest.mark.parametrize("name", list(ONE_CYCLE_CASES))
def test_one_cycle_lr_and_momentum_match_torch(name):
    torch = pytest.importorskip("torch")
    make_optimizer, options = ONE_CYCLE_CASES[name]
    steps = options.get("total_steps") or options["epochs"] * options["steps_per_epoch"]
    ours = one_cycle_sequence(optim, make_optimizer, lambda: nn.Parameter(np.zeros(1)), steps, **options)
    theirs = one_cycle_sequence(torch.optim, make_optimizer, lambda: torch.zeros(1, requires_grad=True), steps,
                                **options)
    for step, ((lr, m), (t_lr, t_m)) in enumerate(zip(ours, theirs)):
        assert_close(lr, t_lr, rtol=1e-12, atol=1e-15)
        assert_close(m, t_m, rtol=1e-12, atol=1e-15)


def test_one_cycle_trains_sgd_momentum_like_torch():
    """The cycled momentum reaches the update rule: six steps of SGD give torch's weights."""
    torch = pytest.importorskip("torch")

    def train(lib, make_tensor, to_numpy):
        w = make_tensor(W0.copy())
        opt = lib.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=6, three_phase=True)
        for _ in range(6):
            opt.zero_grad()
            (((lib.tensor(A) @ w) - lib.tensor(TARGET)) ** 2).sum().backward()
            opt.step()
            sched.step()
        return to_numpy(w)

    ours = train(tg, nn.Parameter, lambda w: w.data)
    theirs = train(torch, lambda a: torch.tensor(a, requires_grad=True), lambda w: w.detach().numpy())
    assert_close(ours, theirs)


def test_one_cycle_validation_state_dict_and_overrun():
    p = nn.Parameter(np.zeros(1))
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=1.0)
    with pytest.raises(ValueError, match="epochs"):
        lr_scheduler.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=1.0, epochs=0, steps_per_epoch=3)
    with pytest.raises(ValueError, match="pct_start"):
        lr_scheduler.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=1.0, total_steps=5, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lr_scheduler.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=1.0, total_steps=5,
                                anneal_strategy="cosine")
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        lr_scheduler.OneCycleLR(optim.Adagrad([p], lr=0.1), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="one value per param group"):
        lr_scheduler.OneCycleLR(optim.SGD([p], lr=0.1, momentum=0.9), max_lr=[1.0, 2.0], total_steps=5)

    opt = optim.Adam([p], lr=0.1)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=6)
    for _ in range(2):
        sched.step()
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    rest = []
    for _ in range(4):
        sched.step()
        rest.append((sched.get_last_lr(), opt.param_groups[0]["betas"]))
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()  # a seventh step is past the schedule

    p2 = nn.Parameter(np.zeros(1))
    opt2 = optim.Adam([p2], lr=0.1)
    opt2.load_state_dict(saved_opt)  # the bounds OneCycleLR keeps in the param groups load too
    sched2 = lr_scheduler.OneCycleLR(opt2, max_lr=1.0, total_steps=6)
    sched2.load_state_dict(saved_sched)
    opt2.load_state_dict(saved_opt)
    resumed = []
    for _ in range(4):
        sched2.step()
        resumed.append((sched2.get_last_lr(), opt2.param_groups[0]["betas"]))
    assert resumed == rest


def plateau_sequence(lib, make_tensor, metrics, **options):
    opt = lib.SGD([{"params": [make_tensor()]}, {"params": [make_tensor()], "lr": 0.05}], lr=1.0)
    sched = lib.lr_scheduler.ReduceLROnPlateau(opt, **options)
    history = [sched.get_last_lr()]
    for metric in metrics:
        opt.step()
        sched.step(metric)
        history.append(sched.get_last_lr())
    return history


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.8999, 0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.49] + [0.5] * 12
PLATEAU_CASES = [
    dict(),
    dict(patience=0),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=1, factor=0.5, threshold=0.05, threshold_mode="abs"),
    dict(patience=2, factor=0.3, threshold=0.02),
    dict(patience=0, factor=0.2, min_lr=[0.1, 0.01]),
    dict(patience=0, factor=0.5, min_lr=0.3, eps=0.1),
    dict(mode="max", patience=1, factor=0.5),
    dict(mode="max", patience=0, threshold=0.1, threshold_mode="abs", cooldown=1),
]


@pytest.mark.parametrize("options", PLATEAU_CASES, ids=[",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
                                                         for o in PLATEAU_CASES])
def test_reduce_lr_on_plateau_matches_torch(options):
    torch = pytest.importorskip("torch")
    ours = plateau_sequence(optim, lambda: nn.Parameter(np.zeros(1)), PLATEAU_METRICS, **options)
    theirs = plateau_sequence(torch.optim, lambda: torch.zeros(1, requires_grad=True), PLATEAU_METRICS, **options)
    assert_close(np.array(ours), np.array(theirs), rtol=1e-12, atol=1e-15)
    assert ours[-1] != ours[0]  # every case does reduce the rate


def test_reduce_lr_on_plateau_takes_tensors_validates_and_resumes():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(tg.tensor(1.0))  # a 0-d loss tensor, as training loops pass it
    sched.step(tg.tensor(2.0))
    assert sched.get_last_lr() == [0.5]
    state = sched.state_dict()
    assert "optimizer" not in state
    opt2 = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.5)
    sched2 = lr_scheduler.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(state)
    sched.step(3.0)
    sched2.step(3.0)
    assert sched2.get_last_lr() == sched.get_last_lr() == [0.25]
    for bad in [dict(factor=1.0), dict(mode="lowest"), dict(threshold_mode="relative"), dict(min_lr=[0.1, 0.2])]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            lr_scheduler.ReduceLROnPlateau(opt, **bad)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.ReduceLROnPlateau("optimizer")


def test_new_schedulers_resume_through_a_checkpoint_file(tmp_path):
    """Their state (infinities, phase tables, cycled betas) survives save_module/load_module's JSON."""
    from tinygrad_course import checkpoint

    def build():
        model = nn.Linear(2, 1, dtype="float64")
        opt = optim.Adam(model.parameters(), lr=0.1)
        return model, opt, lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=8), \
            lr_scheduler.ReduceLROnPlateau(opt, patience=0)

    model, opt, cycle, plateau = build()
    for metric in (1.0, 2.0):
        cycle.step()
        plateau.step(metric)
    path = tmp_path / "run.npz"
    checkpoint.save_module(path, model, opt, cycle=cycle.state_dict(), plateau=plateau.state_dict())
    expected = []
    for metric in (3.0, 0.5, 0.6):
        cycle.step()
        plateau.step(metric)
        expected.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]))

    model2, opt2, cycle2, plateau2 = build()
    meta = checkpoint.load_module(path, model2, opt2)
    cycle2.load_state_dict(meta["cycle"])
    plateau2.load_state_dict(meta["plateau"])
    resumed = []
    for metric in (3.0, 0.5, 0.6):
        cycle2.step()
        plateau2.step(metric)
        resumed.append((opt2.param_groups[0]["lr"], opt2.param_groups[0]["betas"]))
    assert resumed == expected


def test_warm_restarts_take_fractional_epochs_like_torch():
    torch = pytest.importorskip("torch")

    def run(lib, make_tensor):
        opt = lib.SGD([make_tensor()], lr=0.1)
        sched = lib.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3, eta_min=0.01)
        history = []
        for epoch in range(6):
            for i in range(4):  # stepped per batch, as PyTorch's documentation shows
                opt.step()
                sched.step(epoch + i / 4)
                history.append(sched.get_last_lr()[0])
        sched.step()  # and back to whole epochs
        return history + sched.get_last_lr()

    ours = run(optim, lambda: nn.Parameter(np.zeros(1)))
    theirs = run(torch.optim, lambda: torch.zeros(1, requires_grad=True))
    assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


def test_sequential_lr_validation_and_resume():
    def build():
        opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
        warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2)
        return opt, lr_scheduler.SequentialLR(opt, [warmup, lr_scheduler.ExponentialLR(opt, 0.5)], milestones=[2])

    opt, sched = build()
    for _ in range(3):
        sched.step()
    saved = sched.state_dict()
    expected = []
    for _ in range(3):
        sched.step()
        expected.append(sched.get_last_lr())
    opt2, sched2 = build()
    sched2.load_state_dict(saved)
    opt2.param_groups[0]["lr"] = saved["_last_lr"][0]
    resumed = []
    for _ in range(3):
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == expected

    other = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="one milestone fewer"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.5)], milestones=[2])
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(other, 0.5)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(opt, 0.5), lr_scheduler.ExponentialLR(other, 0.5)])
    with pytest.raises(ValueError, match="at least one"):
        lr_scheduler.ChainedScheduler([])
    for bad in [dict(start_factor=0.0), dict(end_factor=1.5), dict(total_iters=0)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            lr_scheduler.LinearLR(opt, **bad)
    with pytest.raises(ValueError, match="T_mult"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ConstantLR(opt, factor=2.0)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop"])
def test_torchs_implementation_switches_are_accepted_and_change_nothing(name):
    """foreach/fused/capturable pick an implementation in torch (nanoGPT passes fused=True): same updates."""
    plain = run_ours(lambda lib, ps: getattr(lib, name)(ps, lr=0.01), steps=2)
    switched = run_ours(lambda lib, ps: getattr(lib, name)(ps, lr=0.01, foreach=False, fused=True,
                                                           capturable=False, differentiable=False), steps=2)
    for mine, ref in zip(switched, plain):
        for a, b in zip(mine, ref):
            assert np.array_equal(a, b)
    w = nn.Parameter(W0.copy())
    with pytest.raises(NotImplementedError, match="differentiable"):
        getattr(optim, name)([w], lr=0.01, differentiable=True)
    with pytest.raises(TypeError, match="momentun"):
        getattr(optim, name)([w], lr=0.01, momentun=0.9)


CYCLIC_CASES = {
    "triangular-sgd": (lambda m, ps: m.SGD(ps, lr=0.1, momentum=0.9), dict(base_lr=0.01, max_lr=0.1, step_size_up=3)),
    "triangular2-asymmetric": (lambda m, ps: m.SGD(ps, lr=0.1, momentum=0.9),
                               dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.5], step_size_up=2, step_size_down=4,
                                    mode="triangular2", base_momentum=0.7, max_momentum=[0.9, 0.95])),
    "exp_range-adam": (lambda m, ps: m.Adam(ps, lr=0.1), dict(base_lr=0.001, max_lr=0.01, step_size_up=3,
                                                              mode="exp_range", gamma=0.9)),
    "custom-scale-no-momentum": (lambda m, ps: m.Adagrad(ps, lr=0.1),
                                 dict(base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn=lambda x: 0.5 ** x,
                                      scale_mode="iterations", cycle_momentum=False)),
}


@pytest.mark.parametrize("name", list(CYCLIC_CASES))
def test_cyclic_lr_and_momentum_match_torch(name):
    torch = pytest.importorskip("torch")
    make_optimizer, options = CYCLIC_CASES[name]
    runs = [one_cycle_sequence(lib, make_optimizer, make_tensor, 20, scheduler="CyclicLR", **options)
            for lib, make_tensor in [(optim, lambda: nn.Parameter(np.zeros(1))),
                                     (torch.optim, lambda: torch.zeros(1, requires_grad=True))]]
    for (lr, m), (t_lr, t_m) in zip(*runs):
        assert_close(lr, t_lr, rtol=1e-12, atol=1e-15)
        assert_close(m, t_m, rtol=1e-12, atol=1e-15)


def test_cyclic_lr_validation():
    p = nn.Parameter(np.zeros(1))
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.CyclicLR(optim.SGD([p], lr=0.1, momentum=0.9), 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        lr_scheduler.CyclicLR(optim.Adagrad([p], lr=0.1), 0.01, 0.1)
    with pytest.raises(ValueError, match="step_size_up"):
        lr_scheduler.CyclicLR(optim.SGD([p], lr=0.1, momentum=0.9), 0.01, 0.1, step_size_up=0)


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR",
                                  "PolynomialLR", "LambdaLR"])
def test_step_with_an_epoch_jumps_there_like_torch(name):
    """Old scripts call scheduler.step(epoch): deprecated and warned about, but the same rates as torch."""
    torch = pytest.importorskip("torch")
    make = {"StepLR": lambda m, o: m.StepLR(o, 2, gamma=0.5), "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.8),
            "MultiStepLR": lambda m, o: m.MultiStepLR(o, [1, 4], gamma=0.5),
            "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=6),
            "LinearLR": lambda m, o: m.LinearLR(o, 0.2, total_iters=4),
            "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=5),
            "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 1 / (1 + e))}[name]

    def run(lib, make_tensor):
        opt = lib.SGD([make_tensor()], lr=0.1)
        sched = make(lib.lr_scheduler, opt)
        lrs = []
        for epoch in [1, 2, 5, 3, 7]:
            opt.step()
            with pytest.warns(UserWarning, match="deprecated"):
                sched.step(epoch)
            lrs.append(sched.get_last_lr()[0])
        return lrs

    ours = run(optim, lambda: nn.Parameter(np.zeros(1)))
    theirs = run(torch.optim, lambda: torch.zeros(1, requires_grad=True))
    assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


def test_reduce_lr_on_plateau_step_with_an_epoch():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(1.0, epoch=5)
    assert sched.last_epoch == 5 and sched.best == 1.0


@pytest.mark.parametrize("options", [dict(), dict(lr=0.5, max_iter=4, history_size=2),
                                     dict(max_iter=3, max_eval=2, tolerance_change=1e-3),
                                     dict(line_search_fn="strong_wolfe"),
                                     dict(lr=2.0, max_iter=5, history_size=2, line_search_fn="strong_wolfe"),
                                     dict(lr=50.0, max_iter=3, line_search_fn="strong_wolfe"),  # zooms back in
                                     dict(lr=0.01, max_iter=3, line_search_fn="strong_wolfe")])  # extrapolates
def test_lbfgs_matches_torch(options):
    """Three steps of a closure-driven LBFGS on least squares plus a quartic penalty: not quadratic, but
    with one well-conditioned minimum, so rounding differences stay at rounding level."""
    torch = pytest.importorskip("torch")

    def run(lib, make_tensor, to_numpy):
        w = make_tensor(W0.copy())
        opt = lib.optim.LBFGS([w], **options)

        def closure():
            opt.zero_grad()
            loss = (((lib.tensor(A) @ w) - lib.tensor(TARGET)) ** 2).sum() + 0.1 * (w ** 4).sum()
            loss.backward()
            return loss

        history = []
        for _ in range(3):
            first_loss = opt.step(closure)
            history.append((float(first_loss.item()), to_numpy(w).copy()))
        return history

    ours = run(tg, nn.Parameter, lambda w: w.detach().numpy())
    theirs = run(torch, lambda a: torch.tensor(a, requires_grad=True), lambda w: w.detach().numpy())
    for (loss, w), (t_loss, t_w) in zip(ours, theirs):
        assert_close(loss, t_loss, rtol=1e-9, atol=1e-12)
        assert_close(w, t_w, rtol=1e-9, atol=1e-12)
    assert ours[-1][0] < ours[0][0]  # it does descend


def test_lbfgs_refuses_what_it_does_not_do():
    w = nn.Parameter(W0.copy())
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError, match="one param group"):
        optim.LBFGS([{"params": [w]}, {"params": [nn.Parameter(W0.copy())]}])
    opt = optim.LBFGS([w])
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(NotImplementedError, match="curvature history"):
        opt.state_dict()
    with pytest.raises(ValueError, match="max_iter"):
        optim.LBFGS([w], max_iter=0)
