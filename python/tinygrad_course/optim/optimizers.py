"""Optimisers with PyTorch's update rules (see the pseudo-code in the torch.optim docs).

Every update is computed on the NumPy arrays (`p._data`, `p.grad._data`) and
written back with one in-place Tensor operation per parameter (`p.add_`,
`p.sub_` or `p.copy_`, under no_grad). That bumps the parameter's version
counter once, so a graph that saved the old weights refuses to backward
instead of giving a wrong gradient.
Parameters whose `.grad` is None are skipped (they took no part in the loss).

State (momentum buffers, moment estimates, step counts) lives in
`optimizer.state[param]` as NumPy arrays and Python numbers, so `state_dict()`
holds only arrays and scalars and can be saved without pickle.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..device import to_device, to_numpy
from ..tensor import Tensor, no_grad, set_grad_enabled

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop",
           "LBFGS"]

# Keys that schedulers write into param groups (OneCycleLR keeps its bounds there, as in PyTorch):
# not options of any optimizer, but a saved optimizer state must load with them.
_SCHEDULER_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
# Per-parameter state that is a number, not an array like the parameter (and its type).
_SCALAR_STATE = {"step": int, "mu_product": float}


def _check_implementation(name: str, options: dict) -> None:
    """PyTorch's foreach/fused/capturable flags choose among implementations of the same update (for
    speed on GPUs): accepted and ignored here. differentiable=True would record the step for autograd."""
    unknown = sorted(set(options) - {"foreach", "fused", "capturable", "differentiable"})
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword argument(s) {unknown}")
    if options.get("differentiable"):
        raise NotImplementedError(f"{name}: differentiable=True is not supported (steps are not recorded by autograd)")


def _check_non_negative(name: str, value) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0.0:
        raise ValueError(f"invalid {name}: {value!r} (must be a non-negative number)")


class Optimizer:
    """Base class: holds `param_groups` (dicts of params + options) and per-parameter `state`.

    `params` is an iterable of Tensors, or of dicts `{"params": [...], "lr": ...}`
    whose options override `defaults` for that group (e.g. no weight decay on biases).
    """

    def __init__(self, params, defaults: dict, **implementation):
        _check_implementation(type(self).__name__, implementation)
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or dicts, got a single Tensor; "
                            "pass [tensor] or model.parameters()")
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict] = {}
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (defaults fill the others)."""
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"a param group must be a dict with a 'params' entry, got {param_group!r}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizers can only optimize Tensors, got a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"cannot optimize a non-leaf tensor of shape {p.shape} (it is computed from "
                                 "others); optimize the leaves it comes from")
            if p.dtype.kind != "f":
                raise TypeError(f"cannot optimize a tensor of dtype {p.dtype}; parameters must be float")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears twice in one param group")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one param group")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}, "params": params}
        unknown = set(group) - set(self.defaults) - {"params"} - _SCHEDULER_KEYS
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)} for {type(self).__name__}; "
                            f"valid ones are {sorted(self.defaults)}")
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict) -> None:
        """Subclasses check their hyper-parameters here (also for per-group overrides)."""
        _check_non_negative("learning rate", group["lr"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient; `closure` (re)computes and returns the loss."""
        loss = None
        if closure is not None:
            with set_grad_enabled(True):
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad._data, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _prepare_grad(p: Tensor, grad: np.ndarray, group: dict) -> np.ndarray:
        """-grad when maximizing, plus the L2 term weight_decay * p (PyTorch's order); may alias grad."""
        if group.get("maximize"):
            grad = -grad
        weight_decay = group.get("weight_decay", 0)
        if weight_decay:
            grad = grad + weight_decay * p._data
        return grad

    # --- (de)serialisation -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {name: array or number}}, "param_groups": [options + "params": indices]}.

        Parameters are referred to by their position across the groups, as in PyTorch,
        so the dict can be loaded into an optimizer built on a fresh copy of the model.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (np.array(to_numpy(v), copy=True) if hasattr(v, "shape") else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict()` (from an optimizer of the same layout).

        Options take the types of this optimizer's current ones and state arrays the
        dtype of their parameter, so a dict that went through a file (0-d arrays for
        numbers, string indices) loads as well as the original.
        """
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the state dict has {len(saved_groups)} param groups, this optimizer has "
                             f"{len(self.param_groups)}")
        params_by_index = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            unknown = set(saved) - set(self.defaults) - {"params"} - _SCHEDULER_KEYS
            if unknown:
                raise ValueError(f"param group {i} of the state dict has options {sorted(unknown)} that "
                                 f"{type(self).__name__} does not know; was it saved from another optimizer?")
            saved_ids = [int(j) for j in np.asarray(saved["params"]).reshape(-1)]
            if len(saved_ids) != len(group["params"]):
                raise ValueError(f"param group {i} has {len(saved_ids)} parameters in the state dict, "
                                 f"{len(group['params'])} in this optimizer")
            params_by_index.update(zip(saved_ids, group["params"]))
        new_state = {}
        for key, values in state_dict["state"].items():
            p = params_by_index.get(int(key))
            if p is None:
                raise ValueError(f"the state dict has state for parameter {key}, which no param group lists")
            new_state[p] = {}
            for name, v in values.items():
                arr = to_numpy(v) if hasattr(v, "shape") else np.asarray(v)
                if arr.ndim == 0 and name in _SCALAR_STATE:
                    new_state[p][name] = _SCALAR_STATE[name](arr)
                elif arr.shape == p.shape:
                    arr = arr.astype(p.dtype, copy=True)
                    new_state[p][name] = arr if p.device == "cpu" else to_device(arr, p.device)
                else:
                    raise ValueError(f"state {name!r} of parameter {key} has shape {arr.shape}, "
                                     f"the parameter has {p.shape}")
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            options = {}
            for k, v in saved.items():
                if k == "params":
                    continue
                current = group.get(k, self.defaults.get(k))
                options[k] = _like(v, current)
            new_groups.append({**group, **options})
        for g in new_groups:
            self._validate(g)
        self.param_groups[:] = new_groups
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _like(value, reference):
    """Convert a loaded option (maybe a 0-d or 1-d array) back to the type of the current one."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else tuple(value.tolist())
    if isinstance(reference, bool):
        return bool(value)
    if isinstance(reference, float):
        return float(value)
    if isinstance(reference, int):
        return int(value)
    if isinstance(reference, tuple):
        return tuple(type(r)(x) for r, x in zip(reference, value))
    return value


def _check_adam_options(group: dict) -> None:
    """eps, weight_decay and betas, as the Adam family takes them (betas stored as a tuple)."""
    _check_non_negative("eps", group["eps"])
    _check_non_negative("weight_decay", group["weight_decay"])
    betas = tuple(group["betas"])
    if len(betas) != 2 or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"invalid betas {group['betas']!r}: need two numbers in [0, 1)")
    group["betas"] = betas


def _first_moment(p: Tensor, g, state: dict, beta1: float, second: str):
    """Count the step and update Adam's first moment m (a lerp towards g, as PyTorch); the state also holds
    the second statistic under the name `second` (zeros at the first step). Returns m and that statistic."""
    if not state:
        state["step"] = 0
        state["exp_avg"] = p._xp.zeros_like(p._data)
        state[second] = p._xp.zeros_like(p._data)
    state["step"] += 1
    m = state["exp_avg"]
    m += (1 - beta1) * (g - m)
    return m, state[second]


def _adam_gradient(p: Tensor, grad, group: dict, decoupled: bool):
    """The gradient the Adam family's moments follow: negated to maximize, plus L2 weight decay unless
    the decay is decoupled (AdamW's form, applied to the parameter instead)."""
    g = -grad if group["maximize"] else grad
    if group["weight_decay"] and not decoupled:
        g = g + group["weight_decay"] * p._data
    return g


def _moments(p: Tensor, g, state: dict, beta1: float, beta2: float):
    """Adam's moment estimates m and v (the mean of g * g), updated; returns them."""
    m, v = _first_moment(p, g, state, beta1, "exp_avg_sq")
    v *= beta2
    v += (1 - beta2) * (g * g)
    return m, v


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    g = grad (+ weight_decay * p); with momentum b = momentum * b + (1 - dampening) * g
    (b = g on the first step) and g = b, or g = g + momentum * b for Nesterov; p -= lr * g.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False, **implementation):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay, maximize=maximize), **implementation)

    def _validate(self, group):
        super()._validate(group)
        _check_non_negative("momentum", group["momentum"])
        _check_non_negative("weight_decay", group["weight_decay"])
        _check_non_negative("dampening", group["dampening"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def _update(self, p, grad, group, state):
        g = self._prepare_grad(p, grad, group)
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = p._xp.array(g, dtype=p.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.add_(-group["lr"] * g)


class Adam(Optimizer):
    """Adam with bias-corrected moment estimates; weight_decay is an L2 term added to the gradient.

    m = b1 m + (1 - b1) g (as a lerp);  v = b2 v + (1 - b2) g^2  (v_max = max(v_max, v) with amsgrad);
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    decoupled_weight_decay = False  # AdamW shrinks the weights directly instead

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False, **implementation):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize), **implementation)

    def _validate(self, group):
        super()._validate(group)
        _check_adam_options(group)

    def _update(self, p, grad, group, state):
        lr, weight_decay = group["lr"], group["weight_decay"]
        g = _adam_gradient(p, grad, group, self.decoupled_weight_decay)
        beta1, beta2 = group["betas"]
        m, v = _moments(p, g, state, beta1, beta2)
        t = state["step"]
        if group["amsgrad"]:
            v_max = state.setdefault("max_exp_avg_sq", p._xp.zeros_like(p._data))
            p._xp.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1 ** t)
        denom = p._xp.sqrt(v) / math.sqrt(1 - beta2 ** t)
        denom += group["eps"]
        update = m / denom
        update *= -step_size
        _apply(p, update, lr * weight_decay if self.decoupled_weight_decay else 0.0)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay, then the Adam step without L2."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False, **implementation):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, **implementation)


class Adamax(Adam):
    """Adam with the infinity norm: u = max(b2 u, |g| + eps); p -= lr / (1 - b1^t) * m / u."""

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 maximize: bool = False, **implementation):
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                              maximize=maximize), **implementation)

    def _update(self, p, grad, group, state):
        g = self._prepare_grad(p, grad, group)
        beta1, beta2 = group["betas"]
        m, u = _first_moment(p, g, state, beta1, "exp_inf")
        u *= beta2
        p._xp.maximum(u, p._xp.abs(g) + group["eps"], out=u)
        p.add_(m / u * (-group["lr"] / (1 - beta1 ** state["step"])))


class NAdam(Adam):
    """Adam with Nesterov momentum: the step mixes the current gradient and the momentum with the
    decaying momentum schedule mu_t = b1 (1 - 0.96^(t * momentum_decay) / 2)."""

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, maximize: bool = False,
                 **implementation):
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                              momentum_decay=momentum_decay,
                                              decoupled_weight_decay=decoupled_weight_decay, maximize=maximize),
                           **implementation)

    def _validate(self, group):
        super()._validate(group)
        _check_non_negative("momentum_decay", group["momentum_decay"])

    def _update(self, p, grad, group, state):
        lr, weight_decay, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
        g = _adam_gradient(p, grad, group, group["decoupled_weight_decay"])
        m, v = _moments(p, g, state, beta1, beta2)
        state.setdefault("mu_product", 1.0)
        t, decay = state["step"], group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
        state["mu_product"] *= mu
        denom = p._xp.sqrt(v / (1 - beta2 ** t))
        denom += group["eps"]
        update = (g * (-lr * (1.0 - mu) / (1.0 - state["mu_product"]))
                  + m * (-lr * mu_next / (1.0 - state["mu_product"] * mu_next))) / denom
        _apply(p, update, lr * weight_decay if group["decoupled_weight_decay"] else 0.0)


class RAdam(Adam):
    """Adam whose adaptive step is switched on only once the variance estimate is reliable
    (rho_t > 5), scaled by the rectification term; before that, SGD with momentum."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, maximize: bool = False, **implementation):
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                              decoupled_weight_decay=decoupled_weight_decay, maximize=maximize),
                           **implementation)

    def _update(self, p, grad, group, state):
        lr, weight_decay, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
        g = _adam_gradient(p, grad, group, group["decoupled_weight_decay"])
        m, v = _moments(p, g, state, beta1, beta2)
        t = state["step"]
        bias_correction2 = 1 - beta2 ** t
        m_hat = m / (1 - beta1 ** t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            denom = p._xp.sqrt(v)
            denom += group["eps"]
            update = m_hat * lr * (bias_correction2 ** 0.5 / denom) * rect
        else:
            update = m_hat * lr
        _apply(p, -update, lr * weight_decay if group["decoupled_weight_decay"] else 0.0)


def _apply(p: Tensor, update, shrink: float) -> None:
    """p = p * (1 - shrink) + update in one in-place write (one version bump)."""
    if shrink:
        p.copy_(p._data * (1 - shrink) + update)
    else:
        p.add_(update)


class Adagrad(Optimizer):
    """Per-coordinate learning rates that shrink with the accumulated squared gradient.

    s += g^2;  p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False, **implementation):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize), **implementation)

    def _validate(self, group):
        super()._validate(group)
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_non_negative(name, group[name])

    def _update(self, p, grad, group, state):
        g = self._prepare_grad(p, grad, group)
        if not state:
            state["step"] = 0
            state["sum"] = p._xp.full_like(p._data, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        denom = p._xp.sqrt(state["sum"])
        denom += group["eps"]
        p.add_(g / denom * -clr)


class Adadelta(Optimizer):
    """Adagrad's per-coordinate rates with running averages instead of sums, and units that match.

    v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho u + (1 - rho) d^2;
    p -= lr d.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 maximize: bool = False, **implementation):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize),
                         **implementation)

    def _validate(self, group):
        super()._validate(group)
        for name in ("eps", "weight_decay"):
            _check_non_negative(name, group[name])
        rho = group["rho"]
        if not isinstance(rho, numbers.Real) or isinstance(rho, bool) or not 0.0 <= rho <= 1.0:
            raise ValueError(f"invalid rho: {rho!r} (must be a number in [0, 1])")

    def _update(self, p, grad, group, state):
        g = self._prepare_grad(p, grad, group)
        rho, eps, xp = group["rho"], group["eps"], p._xp
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p._data)
            state["acc_delta"] = xp.zeros_like(p._data)
        state["step"] += 1
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * (g * g)
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * (delta * delta)
        p.add_(delta * -group["lr"])


class RMSprop(Optimizer):
    """Divide the gradient by a running RMS of recent gradients.

    v = alpha v + (1 - alpha) g^2; centered subtracts the squared running mean of g;
    with momentum b = momentum b + g / (sqrt(v) + eps) and p -= lr b, else p -= lr g / (sqrt(v) + eps).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False, **implementation):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize), **implementation)

    def _validate(self, group):
        super()._validate(group)
        for name in ("alpha", "eps", "weight_decay", "momentum"):
            _check_non_negative(name, group[name])

    def _update(self, p, grad, group, state):
        g = self._prepare_grad(p, grad, group)
        alpha = group["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = p._xp.zeros_like(p._data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = p._xp.zeros_like(p._data)
            if group["centered"]:
                state["grad_avg"] = p._xp.zeros_like(p._data)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = p._xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = p._xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p.add_(-group["lr"] * buf)
        else:
            p.add_(g / avg * -group["lr"])


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, kept within bounds
    (the bracket by default); the bounds' midpoint when the cubic has no minimum."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, lo), hi)


def _strong_wolfe(obj_func, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """PyTorch's line search for a step t along d satisfying the strong Wolfe conditions: enough
    decrease (c1) and a flat enough slope (c2). First bracket a good step, then zoom in by cubic
    interpolation. Returns (loss, flat gradient, t, evaluations)."""
    d_norm = float(abs(d).max())
    f_new, g_new = obj_func(t, d)
    evals, ls_iter, done = 1, 0, False
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    while ls_iter < max_ls:  # bracketing
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, done = [t], [f_new], [g_new], True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        t_next = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                    bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = obj_func(t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:  # zoom
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # keep t away from the bracket's ends, or the search can stall there
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = obj_func(t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGS(Optimizer):
    """Limited-memory BFGS (PyTorch's algorithm, line_search_fn=None or "strong_wolfe"): each step(closure)
    runs up to max_iter quasi-Newton iterations, re-evaluating the loss through `closure`, which must zero the
    gradients, compute the loss, call backward() and return the loss. One param group only; the
    curvature history is a list of flat vectors, so this optimizer's state is not saved by state_dict().
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS takes one param group (per-group options are not supported)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict) -> None:
        if self.param_groups:
            raise ValueError("LBFGS takes one param group (per-group options are not supported)")
        super().add_param_group(param_group)

    def _validate(self, group):
        super()._validate(group)
        for name in ("max_iter", "max_eval", "history_size"):
            if isinstance(group[name], bool) or not isinstance(group[name], int) or group[name] <= 0:
                raise ValueError(f"invalid {name}: {group[name]!r} (must be a positive integer)")
        for name in ("tolerance_grad", "tolerance_change"):
            _check_non_negative(name, group[name])

    def _flat_grad(self):
        xp = self._params[0]._xp
        return xp.concatenate([(p.grad._data if p.grad is not None else xp.zeros_like(p._data)).reshape(-1)
                               for p in self._params])

    def _add_to_params(self, t: float, d) -> None:
        start = 0
        for p in self._params:
            p.add_(t * d[start:start + p.numel()].reshape(p.shape))
            start += p.numel()

    def step(self, closure=None):
        """Run up to max_iter iterations; returns the loss of the first evaluation (as PyTorch)."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that zeroes the gradients, computes the loss, "
                             "calls backward() and returns the loss")

        def evaluate():
            with set_grad_enabled(True):
                value = closure()
            return value, (value.item() if isinstance(value, Tensor) else float(value))

        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change, history_size = group["tolerance_grad"], group["tolerance_change"], group["history_size"]
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss, loss = evaluate()
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if abs(flat_grad).max() <= tol_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        with no_grad():
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:  # steepest descent, and an empty curvature history
                    d, old_dirs, old_stps, ro, h_diag = -flat_grad, [], [], [], 1
                else:
                    y, s = flat_grad - prev_flat_grad, d * t
                    ys = float(y @ s)
                    if ys > 1e-10:  # keep the pair only where the curvature is positive
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                        old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                        h_diag = ys / float(y @ y)
                    # the two-loop recursion: d = -H g with H the BFGS inverse-Hessian estimate
                    q, al = -flat_grad, [0.0] * len(old_dirs)
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = float(old_stps[i] @ q) * ro[i]
                        q = q - al[i] * old_dirs[i]
                    d = q * h_diag
                    for i in range(len(old_dirs)):
                        d = d + (al[i] - float(old_dirs[i] @ d) * ro[i]) * old_stps[i]
                prev_flat_grad, prev_loss = flat_grad.copy(), loss
                t = min(1.0, 1.0 / float(abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
                if float(flat_grad @ d) > -tol_change:  # not a descent direction
                    break
                evals = 0
                if group["line_search_fn"] == "strong_wolfe":
                    start = [p._data.copy() for p in self._params]

                    def directional(step, direction):  # the loss and gradient at start + step * direction
                        self._add_to_params(step, direction)
                        _, value = evaluate()
                        grad = self._flat_grad()
                        for p, x in zip(self._params, start):
                            p.copy_(x)
                        return value, grad
                    loss, flat_grad, t, evals = _strong_wolfe(directional, t, d, loss, flat_grad,
                                                              float(flat_grad @ d), max_ls=max_eval - current_evals)
                    self._add_to_params(t, d)
                else:
                    self._add_to_params(t, d)
                    if n_iter != max_iter:
                        _, loss = evaluate()
                        flat_grad = self._flat_grad()
                        evals = 1
                current_evals += evals
                state["func_evals"] += evals
                if (n_iter == max_iter or current_evals >= max_eval or abs(flat_grad).max() <= tol_grad
                        or abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change):
                    break
        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    def state_dict(self) -> dict:
        raise NotImplementedError("LBFGS keeps a curvature history that state_dict() does not save; "
                                  "build a new LBFGS after loading the model instead")

    def load_state_dict(self, state_dict: dict) -> None:
        self.state_dict()  # the same refusal
