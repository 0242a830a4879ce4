"""Learning-rate schedules with PyTorch's semantics.

Build the scheduler after the optimizer and call `scheduler.step()` once per
epoch, after that epoch's `optimizer.step()` calls. Construction counts as
epoch 0 (the optimizer keeps its learning rate), and each `step()` moves to the
next epoch and writes the new rate into every param group's "lr". As in
PyTorch, most schedules are applied multiplicatively to the current "lr"
("chainable"), so two schedulers on one optimizer compose.
"""
from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections import Counter

from ..tensor import Tensor
from .optimizers import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "LambdaLR", "TimeBasedDecay", "MultiStepLR",
           "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR", "ConstantLR",
           "CosineAnnealingWarmRestarts", "SequentialLR", "ChainedScheduler", "MultiplicativeLR", "PolynomialLR",
           "CyclicLR"]


_EPOCH_DEPRECATION = ("the epoch argument of scheduler.step() is deprecated (as in PyTorch): call step() once "
                      "per epoch without it")


class LRScheduler:
    """Base class: subclasses define `get_lr()`, the rates for epoch `self.last_epoch`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            missing = [i for i, g in enumerate(optimizer.param_groups) if "initial_lr" not in g]
            if missing:
                raise KeyError(f"resuming at last_epoch={last_epoch} needs 'initial_lr' in param groups {missing}; "
                               "it is set when a scheduler is built with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        """The step that construction makes (SequentialLR repeats it when its first scheduler starts)."""
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - interface
        raise NotImplementedError

    def _closed_form_lr(self) -> list[float] | None:
        """The rates at `last_epoch` from base_lrs alone, where the schedule has a formula (else None)."""
        return None

    def _restart_at(self, epoch: int) -> None:
        """Jump to `epoch` (SequentialLR starts a scheduler at 0 at its milestone), as PyTorch's _update_lr."""
        self.last_epoch = epoch
        lrs = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs if lrs is not None else self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set the optimizer's learning rates for it. Passing `epoch` jumps there,
        by the schedule's formula where it has one (deprecated in PyTorch, which warns the same way)."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
            self._restart_at(epoch)
            return
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last `step()` (one per param group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer (and functions, which cannot be saved as data)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas", "scale_fn")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the rate by gamma every `step_size` epochs: lr = lr0 * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by gamma every epoch: lr = lr0 * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by gamma at each milestone epoch (gamma ** n for a milestone listed n times)."""

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) for m in milestones) or milestones != sorted(milestones):
            raise ValueError(f"milestones must be an increasing list of integers, got {milestones}")
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _closed_form_lr(self):
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = lr0 * lr_lambda(epoch); one function, or one per param group."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"expected {n} lr_lambdas (one per param group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("lr_lambda must be a function of the epoch (or a list of them)")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class TimeBasedDecay(LRScheduler):
    """Keras's "time-based" decay, per epoch: lr_t = lr0 / (1 + decay * t).

    The course lists it beside step and exponential schedules; it decays like 1/t,
    quickly at first and then ever more slowly.
    """

    def __init__(self, optimizer: Optimizer, decay: float, last_epoch: int = -1):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or decay < 0:
            raise ValueError(f"decay must be a non-negative number, got {decay!r}")
        self.decay = decay
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base / (1 + self.decay * self.last_epoch) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from lr0 down to eta_min over T_max epochs (then back up, periodically):

    lr_t = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2, applied in PyTorch's
    recursive form so that it composes with other schedulers.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # at the trough the ratio below would divide by zero
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - eta_min) + eta_min
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


def _factor(name: str, value, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            (0 < value <= 1) if low_open else (0 <= value <= 1)):
        raise ValueError(f"{name} must be a number in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}")
    return value


class LinearLR(LRScheduler):
    """Multiply the rate by a factor that moves linearly from start_factor to end_factor over total_iters
    epochs, then stays (a warm-up when start_factor < 1)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor = _factor("start_factor", start_factor, low_open=True)
        self.end_factor = _factor("end_factor", end_factor)
        self.total_iters = _positive_int_arg("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor  # PyTorch's recursive (chainable) form
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]

    def _closed_form_lr(self):
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * done) for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the rate by `factor` for the first total_iters epochs, then restore it."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        self.factor = _factor("factor", factor)
        self.total_iters = _positive_int_arg("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [base * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine annealing from lr0 to eta_min over T_i epochs, then a restart at lr0, with
    T_0, T_0 * T_mult, T_0 * T_mult^2, ... epochs per cycle. step() also takes a fractional epoch,
    e.g. step(epoch + i / batches_per_epoch) to anneal within epochs, as in PyTorch."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_0 = self.T_i = _positive_int_arg("T_0", T_0)
        self.T_mult = _positive_int_arg("T_mult", T_mult)
        if isinstance(eta_min, bool) or not isinstance(eta_min, (int, float)):
            raise ValueError(f"eta_min must be a number, got {eta_min!r}")
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to `epoch` (which may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:  # a restart: the next cycle is T_mult times longer
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        elif epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:  # which cycle `epoch` falls in: T_0 (T_mult^n - 1) / (T_mult - 1) epochs precede cycle n
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        else:
            self.T_i, self.T_cur = self.T_0, epoch
        self._step_count += 1
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class _SchedulerList(LRScheduler):
    """Shared by SequentialLR and ChainedScheduler: schedulers of one optimizer, saved together."""

    def _check_schedulers(self, optimizer: Optimizer, schedulers: list) -> None:
        name = type(self).__name__
        if not schedulers:
            raise ValueError(f"{name} needs at least one scheduler")
        for i, sched in enumerate(schedulers):
            if isinstance(sched, ReduceLROnPlateau):
                raise ValueError(f"{name} cannot run ReduceLROnPlateau (scheduler {i}): its step needs a metric")
            if not isinstance(sched, LRScheduler):
                raise TypeError(f"{name}: scheduler {i} is a {type(sched).__name__}, not a scheduler")
            if sched.optimizer is not optimizer:
                raise ValueError(f"{name}: scheduler {i} ({type(sched).__name__}) belongs to another optimizer")

    def state_dict(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        for sched, saved in zip(self._schedulers, state.pop("_schedulers")):
            sched.load_state_dict(saved)
        self.__dict__.update(state)


class SequentialLR(_SchedulerList):
    """Run `schedulers` one after another, switching at each of the `milestones` epochs (one fewer
    than schedulers), e.g. a LinearLR warm-up followed by CosineAnnealingLR."""

    def __init__(self, optimizer: Optimizer, schedulers, milestones, last_epoch: int = -1):
        schedulers, milestones = list(schedulers), list(milestones)
        self._check_schedulers(optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers: got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        self.optimizer = optimizer
        self._schedulers, self._milestones = schedulers, milestones
        self.last_epoch = last_epoch + 1
        # Undo what building the schedulers did, then start the first one afresh (PyTorch's order).
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for sched in schedulers:
            sched.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        i = bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            sched._restart_at(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()


class ChainedScheduler(_SchedulerList):
    """Step several (chainable) schedulers together with one step(): their factors multiply."""

    def __init__(self, schedulers, optimizer: Optimizer | None = None):
        schedulers = list(schedulers)
        optimizer = optimizer if optimizer is not None else (schedulers[0].optimizer if schedulers else None)
        self._check_schedulers(optimizer, schedulers)
        self.optimizer, self._schedulers = optimizer, schedulers
        self._last_lr = self._current_lrs()

    def step(self) -> None:
        for sched in self._schedulers:
            sched.step()
        self._last_lr = self._current_lrs()


class MultiplicativeLR(LambdaLR):
    """Multiply the rate by lr_lambda(epoch) every epoch (one function, or one per param group)."""

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * f(self.last_epoch) for lr, f in zip(self._current_lrs(), self.lr_lambdas)]


class PolynomialLR(LRScheduler):
    """Decay the rate to zero over total_iters epochs: lr = lr0 * (1 - epoch / total_iters) ** power."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        self.total_iters = _positive_int_arg("total_iters", total_iters)
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        t, total = self.last_epoch, self.total_iters
        factor = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power  # PyTorch's chainable form
        return [lr * factor for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [base * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base in self.base_lrs]


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    """One value per param group: a list of that length, or a single value for all."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group ({n}), got {len(value)}")
        return list(value)
    return [value] * n


def _positive_int_arg(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _set_momentum(group: dict, value: float, use_beta1: bool) -> None:
    """Write a cycled momentum: Adam's beta1, or SGD's (RMSprop's) momentum."""
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def _momentum_key(name: str, optimizer: Optimizer) -> bool:
    """True when the optimizer's momentum is beta1; refuses one without momentum."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"cycle_momentum=True needs an optimizer with momentum or betas; "
                         f"{type(optimizer).__name__} has neither (pass cycle_momentum=False to {name})")
    return "betas" in optimizer.defaults


class CyclicLR(LRScheduler):
    """Cyclical learning rates, stepped once per batch: triangles between base_lr and max_lr with
    step_size_up batches up and step_size_down down; "triangular2" halves the amplitude each cycle,
    "exp_range" scales it by gamma ** iteration, or a custom scale_fn. Momentum moves the opposite way
    between max_momentum and base_momentum (cycle_momentum), as in PyTorch."""

    per_batch = True  # Trainer steps it after every optimizer step, not once per epoch

    def __init__(self, optimizer: Optimizer, base_lr, max_lr, step_size_up: int = 2000, step_size_down=None,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn=None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum=0.8, max_momentum=0.9, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"CyclicLR needs an Optimizer, got {type(optimizer).__name__}")
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range' (or give scale_fn), "
                             f"got {mode!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        up = float(_positive_int_arg("step_size_up", step_size_up))
        down = float(_positive_int_arg("step_size_down", step_size_down)) if step_size_down is not None else up
        self.total_size, self.step_ratio = up + down, up / (up + down)
        self.mode, self.gamma, self.scale_fn = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else "iterations" if mode == "exp_range" else "cycle"
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key("CyclicLR", optimizer)
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for group, top, base in zip(optimizer.param_groups, self.max_momentums, self.base_momentums):
                    _set_momentum(group, top, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = top, base
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _scale(self, x: float) -> float:
        if self.scale_fn is not None:
            return self.scale_fn(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # position within the cycle, 0..1
        height = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle if self.scale_mode == "cycle" else self.last_epoch)
        if self.cycle_momentum:
            for group, base, top in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                _set_momentum(group, top - (top - base) * height * scale, self.use_beta1)
        return [base + (top - base) * height * scale for base, top in zip(self.base_lrs, self.max_lrs)]


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once per batch: the rate rises from max_lr / div_factor to max_lr over
    the first pct_start of total_steps, then anneals to max_lr / (div_factor * final_div_factor)
    (three_phase: back down to the start first, then to the minimum). Momentum (SGD's momentum or
    Adam's beta1) moves the opposite way between base_momentum and max_momentum, as in PyTorch.
    """

    per_batch = True  # Trainer steps it after every optimizer step, not once per epoch

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"OneCycleLR needs an Optimizer, got {type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = _positive_int_arg("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int_arg("epochs", epochs)
                                * _positive_int_arg("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start must be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        # Each phase: (last step, the group keys of its start and end rate, of its start and end momentum).
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                             "base_momentum", "max_momentum"),
                            (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key("OneCycleLR", optimizer)
            if last_epoch == -1:
                for group, top, base in zip(optimizer.param_groups,
                                            _per_group("max_momentum", optimizer, max_momentum),
                                            _per_group("base_momentum", optimizer, base_momentum)):
                    self._set_momentum(group, top)
                    group["max_momentum"], group["base_momentum"] = top, base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float) -> None:
        _set_momentum(group, value, self.use_beta1)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped {step} times, past its total_steps={self.total_steps}; "
                             "make total_steps (or epochs * steps_per_epoch) cover the whole run")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by `factor` when a metric has not improved for `patience` epochs.

    Call `step(metric)` once per epoch with, e.g., the validation loss (mode="min") or accuracy
    (mode="max"). An improvement must beat the best so far by `threshold` (relative or absolute);
    after a reduction, `cooldown` epochs pass before bad epochs count again; rates never go below
    min_lr, and changes smaller than eps are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0,
                 eps: float = 1e-8):
        # Not LRScheduler.__init__: this schedule has no epoch-0 rate to set, only a reaction to metrics.
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau needs an Optimizer, got {type(optimizer).__name__}")
        if not factor < 1.0:
            raise ValueError(f"factor must be < 1.0 (the rate is multiplied by it), got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.mode, self.factor, self.threshold, self.threshold_mode = mode, factor, threshold, threshold_mode
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        if self.threshold_mode == "rel":
            bound = best * (1.0 - self.threshold if self.mode == "min" else 1.0 + self.threshold)
        else:
            bound = best - self.threshold if self.mode == "min" else best + self.threshold
        return current < bound if self.mode == "min" else current > bound

    def step(self, metrics, epoch: int | None = None) -> None:  # noqa: D102 - the metric is required here
        current = metrics.item() if isinstance(metrics, Tensor) else float(metrics)
        if epoch is not None:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current_lrs()
