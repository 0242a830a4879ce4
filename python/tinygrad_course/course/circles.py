"""COURSE.md section 1: the circles lesson as a four-step progression.

The same 2-4-2 tanh network (logits; softmax inside the cross-entropy) is
trained four ways, from the same initial weights and the same batch order:

1. "manual":   NumPy forward, the hand-derived backward, a hand-written SGD update;
2. "autograd": Tensors with requires_grad, `loss.backward()` computes the gradients;
3. "nn":       `nn.Linear`/`nn.Tanh` layers replace the hand-written forward;
4. "optim":    `optim.SGD` replaces the hand-written update.

Steps 1 and 2 compute the same numbers, so their training curves coincide;
the tests check that the hand-derived gradients equal autograd's.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import nn, optim
from ..data.toy import TOY_DATASETS, train_test_split
from ..models import circles_mlp
from ..nn import functional as F
from ..progress import progress
from ..tensor import Tensor, manual_seed, no_grad

STEPS = ("manual", "autograd", "nn", "optim")


@dataclass
class CirclesConfig:
    dataset: str = "circles"
    n_samples: int = 1000
    noise: float = 0.1
    test_size: float = 0.2
    hidden: int = 4
    lr: float = 0.03
    batch_size: int = 10
    epochs: int = 150
    seed: int = 0


@dataclass
class History:
    step: str
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_train_acc(self):
        return self.train_acc[-1]

    @property
    def final_test_acc(self):
        return self.test_acc[-1]

    def as_dict(self):
        return asdict(self)


def load_data(cfg: CirclesConfig):
    """The seeded data set and its train/test split: x_train, x_test, y_train, y_test."""
    if cfg.dataset not in TOY_DATASETS:
        raise ValueError(f"unknown toy data set {cfg.dataset!r}; choose one of {sorted(TOY_DATASETS)}")
    x, y = TOY_DATASETS[cfg.dataset](n_samples=cfg.n_samples, noise=cfg.noise, seed=cfg.seed)
    split = train_test_split(x, y, test_size=cfg.test_size, seed=cfg.seed)
    if min(len(split[0]), len(split[1])) == 0:  # an empty split would train or score nothing (NaN)
        raise ValueError(f"n_samples={cfg.n_samples} at test_size={cfg.test_size} leaves an empty train or test "
                         "split; generate more points")
    return split


def initial_weights(cfg: CirclesConfig) -> dict:
    """PyTorch-style default initialisation of the 2-4-2 network, as NumPy arrays (weights are (out, in))."""
    manual_seed(cfg.seed)
    model = circles_mlp(cfg.hidden)
    (w_h, b_h), (w_y, b_y) = [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
                              for layer in (model[0], model[2])]
    return {"W_h": w_h, "b_h": b_h, "W_y": w_y, "b_y": b_y}


# --- step 1: everything by hand ----------------------------------------------------------
def manual_forward(w: dict, x: np.ndarray):
    """h~ = W_h x + b_h, h = tanh(h~), y~ = W_y h + b_y, y^ = softmax(y~). Returns (h, y^)."""
    h = np.tanh(x @ w["W_h"].T + w["b_h"])
    logits = h @ w["W_y"].T + w["b_y"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return h, e / e.sum(axis=1, keepdims=True)


def manual_gradients(w: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Mean cross-entropy over the batch and its gradients from the equations of COURSE.md section 1."""
    h, p = manual_forward(w, x)
    onehot = np.eye(p.shape[1], dtype=p.dtype)[y]
    n = len(y)
    loss = float(-np.log(p[np.arange(n), y]).mean())
    d_logits = (p - onehot) / n                              # dL/dy~ = y^ - y (averaged over the batch)
    d_hpre = (d_logits @ w["W_y"]) * (1 - h * h)             # dL/dh~ = (W_y^T (y^ - y)) * (1 - h^2)
    grads = {"W_y": d_logits.T @ h, "b_y": d_logits.sum(0),  # dL/dW_y = (y^ - y) h^T
             "W_h": d_hpre.T @ x, "b_h": d_hpre.sum(0)}      # dL/dW_h = dL/dh~ x^T
    return loss, grads


class _ManualStep:
    def __init__(self, weights, lr):
        self.w = {k: v.copy() for k, v in weights.items()}
        self.lr = lr

    def step(self, xb, yb):
        loss, grads = manual_gradients(self.w, xb, yb)
        for k in self.w:
            self.w[k] -= self.lr * grads[k]
        return loss

    def logits(self, x):
        return manual_forward(self.w, x)[1]


# --- step 2: autograd computes the backward ------------------------------------------------
class _AutogradStep:
    def __init__(self, weights, lr):
        self.w = {k: Tensor(v.copy(), requires_grad=True) for k, v in weights.items()}
        self.lr = lr

    def forward(self, x):
        w = self.w
        return (x @ w["W_h"].T + w["b_h"]).tanh() @ w["W_y"].T + w["b_y"]

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self.forward(x), y)

    def step(self, xb, yb):
        loss = self.loss(Tensor(xb), Tensor(yb))
        loss.backward()
        with no_grad():
            for p in self.w.values():
                p.sub_(p.grad, alpha=self.lr)
                p.grad = None
        return loss.item()

    def logits(self, x):
        with no_grad():
            return self.forward(Tensor(x)).numpy()


# --- steps 3 and 4: nn layers, then an optimizer ------------------------------------------------
def _model_from(weights, hidden):
    model = circles_mlp(hidden)
    model.load_state_dict({"0.weight": weights["W_h"], "0.bias": weights["b_h"],
                           "2.weight": weights["W_y"], "2.bias": weights["b_y"]})
    return model


class _NNStep:
    def __init__(self, weights, lr, hidden):
        self.model = _model_from(weights, hidden)
        self.lr = lr

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self.model(x), y)

    def step(self, xb, yb):
        loss = self.loss(Tensor(xb), Tensor(yb))
        loss.backward()
        with no_grad():
            for p in self.model.parameters():
                p.sub_(p.grad, alpha=self.lr)
        self.model.zero_grad()
        return loss.item()

    def logits(self, x):
        with no_grad():
            return self.model(Tensor(x)).numpy()


class _OptimStep(_NNStep):
    def __init__(self, weights, lr, hidden):
        super().__init__(weights, lr, hidden)
        self.optimizer = optim.SGD(self.model.parameters(), lr=lr)
        self.loss_fn = nn.CrossEntropyLoss()

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return self.loss_fn(self.model(x), y)

    def step(self, xb, yb):
        self.optimizer.zero_grad()
        loss = self.loss(Tensor(xb), Tensor(yb))
        loss.backward()
        self.optimizer.step()
        return loss.item()


def make_trainer(step: str, weights: dict, cfg: CirclesConfig):
    if step == "manual":
        return _ManualStep(weights, cfg.lr)
    if step == "autograd":
        return _AutogradStep(weights, cfg.lr)
    if step == "nn":
        return _NNStep(weights, cfg.lr, cfg.hidden)
    if step == "optim":
        return _OptimStep(weights, cfg.lr, cfg.hidden)
    raise ValueError(f"unknown step {step!r}; choose one of {STEPS}")


def _engine_trainer(step: str, cfg, data, why_not_manual: str):
    """(trainer from the initial weights, x_train, y_train, the mini-batch indices `train` uses, in
    order) for a step that runs on the engine; step "manual" is refused with `why_not_manual`."""
    if step == "manual":
        raise ValueError(f"step 'manual' {why_not_manual}; choose autograd, nn or optim")
    cfg = cfg or CirclesConfig()
    x_train, _, y_train, _ = data if data is not None else load_data(cfg)
    order = np.random.default_rng(cfg.seed + 1).permutation(len(x_train))  # as in train()
    batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    return make_trainer(step, initial_weights(cfg), cfg), x_train, y_train, batches


def step_graph(step: str, cfg: CirclesConfig | None = None, data=None):
    """The autograd graph (a `viz.Graph`) of the first training step's loss: the initial weights and the
    first mini-batch that `train` uses, drawn with values, then backward, so the gradients show too.
    The leaves are named: W_h, b_h, W_y, b_y (step "autograd") or the Module's names, and x."""
    from ..viz import draw_graph
    trainer, x_train, y_train, batches = _engine_trainer(step, cfg, data, "computes its gradients by hand and "
                                                                          "has no autograd graph")
    x = Tensor(x_train[batches[0]])
    loss = trainer.loss(x, Tensor(y_train[batches[0]]))
    params = trainer.w if step == "autograd" else dict(trainer.model.named_parameters())
    graph = draw_graph(loss, {**params, "x": x}, show_values=True)
    loss.backward()
    return graph


def profile_steps(step: str, steps: int, cfg: CirclesConfig | None = None, data=None, warmup: int = 2):
    """A tinygrad_course.profile of `steps` training steps of `step` (after `warmup` unprofiled ones),
    from the initial weights on the first mini-batches that `train` uses."""
    from ..profiler import profile
    trainer, x_train, y_train, batches = _engine_trainer(step, cfg, data, "is NumPy code outside the engine: "
                                                                          "nothing to profile")

    def train_step(k):
        idx = batches[k % len(batches)]
        trainer.step(x_train[idx], y_train[idx])
    for k in range(warmup):
        train_step(k)
    with profile() as prof:
        for k in range(warmup, warmup + steps):
            train_step(k)
    return prof


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == y).mean())


def train(step: str, cfg: CirclesConfig | None = None, data=None, show_progress: bool = True):
    """Train one step of the progression. Returns (History, trainer); trainer.logits(x) predicts."""
    cfg = cfg or CirclesConfig()
    if cfg.batch_size < 1 or cfg.epochs < 1 or cfg.lr <= 0:
        raise ValueError(f"need batch_size >= 1, epochs >= 1 and lr > 0, got {cfg.batch_size}, {cfg.epochs}, {cfg.lr}")
    x_train, x_test, y_train, y_test = data if data is not None else load_data(cfg)
    trainer = make_trainer(step, initial_weights(cfg), cfg)
    order_rng = np.random.default_rng(cfg.seed + 1)  # same batch order for every step
    hist = History(step)
    start = time.perf_counter()
    bar = progress(range(cfg.epochs), desc=f"circles/{step}", enabled=show_progress)
    for epoch in bar:
        order = order_rng.permutation(len(x_train))
        losses = [trainer.step(x_train[idx], y_train[idx])
                  for idx in (order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size))]
        hist.train_loss.append(float(np.mean(losses)))
        if not np.isfinite(hist.train_loss[-1]):
            raise FloatingPointError(f"circles/{step}, epoch {epoch + 1}: the loss is {hist.train_loss[-1]}; "
                                     f"lower the learning rate (lr {cfg.lr})")
        hist.train_acc.append(accuracy(trainer.logits(x_train), y_train))
        hist.test_acc.append(accuracy(trainer.logits(x_test), y_test))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=hist.train_loss[-1], train=hist.train_acc[-1], test=hist.test_acc[-1])
    if hasattr(bar, "close"):
        bar.close()
    hist.seconds = time.perf_counter() - start
    return hist, trainer
