"""Parameter, Module and the two containers (Sequential, ModuleList).

A Module is a tree: its attributes that are Parameters, Modules or registered
buffers are recorded (in assignment order) by `__setattr__`, which is what lets
`parameters()`, `state_dict()`, `train()`/`eval()` and `to(dtype)` walk the
whole model without each layer listing its own pieces. Semantics follow
PyTorch's `torch.nn.Module` so that course material written for PyTorch reads
the same here.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Iterator

import numpy as np

from ..device import canonical_device, is_device_array, is_host_array, to_device
from ..tensor import Tensor, no_grad

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


class Parameter(Tensor):
    """A Tensor that is a learnable weight: it requires grad and a Module registers it.

    `Parameter(data)` takes a Tensor (sharing its array, as `torch.nn.Parameter`
    does) or anything `tensor()` accepts; Python floats become the default dtype.
    """

    def __init__(self, data, requires_grad: bool = True):
        # A Tensor keeps its device: Tensor(cupy_array) with the default device="cpu" would copy it to the host.
        if isinstance(data, Tensor):
            super().__init__(data._data, requires_grad=requires_grad, device=data.device)
            self._vc = data._vc  # and its version counter, as detach() does: in-place updates stay visible
        else:
            super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _retype_in_place(t: Tensor, dtype: np.dtype) -> None:
    """Give `t` a converted copy of its data while keeping the same Tensor object.

    The public `data` setter refuses dtype changes (a safety net for ordinary
    code), but a model conversion must keep the objects optimisers already hold,
    so it swaps the storage directly and bumps the version like any in-place op.
    """
    if t.dtype == dtype:
        return
    t._data = t._data.astype(dtype)
    t._vc[0] += 1
    if t.grad is not None:
        t.grad = Tensor(t.grad._data.astype(dtype), device=t.device)


def _move_in_place(t: Tensor, device: str) -> None:
    """Move `t`'s storage (and its gradient) to `device`, keeping the same Tensor object."""
    if t.device == device:
        return
    t._data = to_device(t._data, device)
    t.device = device
    t._vc[0] += 1
    if t.grad is not None:
        _move_in_place(t.grad, device)


def _is_dtype_name(value) -> bool:
    """True for what names a dtype rather than a device ("float64", np.float32, ...)."""
    try:
        canonical_device(value)
        return False
    except ValueError:
        pass
    try:
        np.dtype(value)
        return True
    except TypeError:
        return False


class Module:
    """Base class of every layer and model: subclass it, assign layers and Parameters
    in `__init__` (after `super().__init__()`), and define `forward`."""

    def __init__(self):
        # object.__setattr__ because our own __setattr__ needs these dicts to exist.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # --- attribute registration ---------------------------------------------------------
    def _check_initialised(self, what: str):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() was called; "
                                 f"call super().__init__() first in {type(self).__name__}.__init__")

    def _forget(self, name: str, keep=None):
        """Remove `name` from the registries, except `keep`, the one about to be written: a replaced
        entry keeps its place in the order, as in PyTorch (a Sequential's converted layer stays put)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._check_initialised("parameters")
            self.__dict__.pop(name, None)
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_initialised("submodules")
            self.__dict__.pop(name, None)
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__}: wrap it in nn.Parameter (or assign None)")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} of "
                                f"{type(self).__name__}: buffers hold Tensors (or None)")
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r} of "
                                f"{type(self).__name__}: it must be a Module (or None)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for registered entries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if any(name in r for r in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def _check_new_name(self, name: str, kind: str, registry: str):
        """Reject names that would silently shadow another attribute (as PyTorch does)."""
        self._check_initialised(kind)
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        exists = name in self.__dict__ or any(name in r for r in (self._parameters, self._buffers, self._modules))
        if exists and name not in self.__dict__[registry]:
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_new_name(name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register state that is not learnt (e.g. BatchNorm's running mean).

        Buffers follow `to(dtype)` and appear in `state_dict()` unless persistent=False.
        """
        self._check_new_name(name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}")
        self._forget(name, keep=self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_new_name(name, "submodule", "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module or None, got {type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    register_module = add_module  # PyTorch's alias

    def get_submodule(self, target: str) -> "Module":
        """The descendant at a dotted path such as "features.0" ("" is this module)."""
        module = self
        for i, name in enumerate(target.split(".") if target else []):
            child = module._modules.get(name)
            if child is None:
                done = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(f"{done} has no submodule {name!r} (looking up {target!r})")
            module = child
        return module

    # --- traversal ---------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, recurse: bool):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))  # shared (tied) tensors are listed once, under their first name
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse):
            yield b

    def num_parameters(self, only_trainable: bool = False) -> int:
        """Number of scalar weights (each shared Parameter counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # --- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Switch this module and all descendants to training (or evaluation) behaviour."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients (None is cheaper than zeros and equivalent for optimisers)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    def apply(self, fn) -> "Module":
        """Call `fn` on every descendant, then on this module (e.g. a custom initialisation); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # --- state -----------------------------------------------------------------------------
    def _state_tensors(self, prefix: str = "") -> "OrderedDict[str, Tensor]":
        """Name -> tensor in PyTorch's order: own parameters, own buffers, then each child."""
        out = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = b
        for name, child in self._modules.items():
            if child is not None:
                out.update(child._state_tensors(prefix + name + "."))
        return out

    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Dotted name -> every parameter and persistent buffer, as a Tensor without grad, in PyTorch's
        order. Unlike PyTorch's (which share the module's storage) they are copies: a state dict kept as
        "the best weights so far" stays so while training goes on (torch needs copy.deepcopy for that)."""
        return OrderedDict((name, Tensor._wrap(t._data.copy(), t.device)) for name, t in self._state_tensors().items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing tensors (in place, so optimisers keep working).

        Everything is checked before anything is copied: a shape or dtype mismatch
        always raises, missing/unexpected keys raise when strict. Returns the
        (missing_keys, unexpected_keys) lists, like PyTorch.
        """
        targets = self._state_tensors()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        arrays = {}
        for name, t in targets.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            arr = value._data if isinstance(value, Tensor) else value if is_device_array(value) else np.asarray(value)
            if arr.shape != t.shape:
                problems.append(f"{name!r}: shape {arr.shape} in the state dict, {t.shape} in the model")
            elif arr.dtype != t.dtype:
                problems.append(f"{name!r}: dtype {arr.dtype} in the state dict, {t.dtype} in the model "
                                "(convert the model with .to(dtype=...), .double() or .float() first)")
            else:
                arrays[name] = arr
        if problems:
            raise RuntimeError(f"error(s) loading the state dict into {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        with no_grad():
            for name, arr in arrays.items():
                targets[name].copy_(arr)
        return IncompatibleKeys(missing, unexpected)

    # --- dtype conversion ----------------------------------------------------------------------
    def to(self, device=None, dtype=None, non_blocking: bool = False) -> "Module":
        """Move parameters and buffers to `device` and/or convert floating ones to `dtype`,
        keeping the same objects (so an optimiser made before still holds them; state an optimiser
        already has, e.g. momentum buffers, is not moved: move the model before training).

        As in PyTorch, a dtype may come first (`model.to(tg.float64)`); non_blocking is accepted and ignored.
        """
        if device is not None and dtype is None and _is_dtype_name(device):
            device, dtype = None, device
        if device is not None:
            device = canonical_device(device)
            for m in self.modules():
                for t in list(m._parameters.values()) + list(m._buffers.values()):
                    if t is not None:
                        _move_in_place(t, device)
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise TypeError(f"Module.to: dtype must be float32 or float64, got {dtype}")
            for m in self.modules():
                for t in list(m._parameters.values()) + list(m._buffers.values()):
                    if t is not None and t.dtype.kind == "f":
                        _retype_in_place(t, dtype)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    def half(self) -> "Module":
        raise TypeError("half precision is not supported: parameters are float32 or float64 (use .float())")

    def bfloat16(self) -> "Module":
        raise TypeError("bfloat16 is not supported: parameters are float32 or float64 (use .float())")

    # --- calling ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define it in the subclass")

    def __call__(self, *args, **kwargs):
        # The one place that refuses raw arrays: forward code would otherwise accept some silently
        # (a copy without autograd) and fail deep inside on others, as PyTorch modules refuse them.
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, np.ndarray) or is_device_array(arg):
                kind = "numpy.ndarray" if is_host_array(arg) else f"{type(arg).__module__}.{type(arg).__name__}"
                raise TypeError(f"{type(self).__name__}: got a {kind} as input; wrap it with "
                                "tinygrad_course.tensor(...) (or from_numpy(...) to share its memory)")
        for hook in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
            result = hook(self, args)
            if result is not None:  # as in PyTorch: a pre-hook may replace the positional inputs
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook) -> "RemovableHandle":
        """Call `hook(module, inputs, output)` after every forward (e.g. to record activations); a
        non-None return value replaces the output. Returns a handle whose remove() unregisters it."""
        return RemovableHandle(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook) -> "RemovableHandle":
        """Call `hook(module, inputs)` before every forward; a non-None return value replaces the inputs."""
        return RemovableHandle(self._forward_pre_hooks, hook)

    # --- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr line (layers override it)."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"


class RemovableHandle:
    """What register_*_hook returns: `handle.remove()` unregisters the hook (also as a context manager)."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict, hook):
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got a {type(hook).__name__}")
        RemovableHandle._next_id += 1
        self.id, self._hooks = RemovableHandle._next_id, hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


class Sequential(Module):
    """Modules applied one after the other: `Sequential(a, b, c)(x) == c(b(a(x)))`.

    Also accepts a single OrderedDict of name -> module to choose the names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        try:
            return items[index][1]
        except IndexError:
            raise IndexError(f"Sequential index {index} is out of range for {len(items)} modules") from None

    def _key(self, index: int) -> str:
        keys = list(self._modules)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -len(keys) <= index < len(keys):
            raise IndexError(f"Sequential index {index!r} is out of range for {len(keys)} modules")
        return keys[index]

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace a layer, e.g. a pretrained network's classifier: `model[-1] = nn.Linear(512, 10)`."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential items must be Modules, got {type(module).__name__}")
        self._modules[self._key(index)] = module

    def __delitem__(self, index) -> None:
        keys = list(self._modules)
        for key in (keys[index] if isinstance(index, slice) else [self._key(index)]):
            del self._modules[key]
        if all(k.isdigit() for k in keys):  # keep the names 0, 1, 2, ... as PyTorch does
            modules = list(self._modules.values())
            self._modules.clear()
            for i, m in enumerate(modules):
                self._modules[str(i)] = m

    def append(self, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential items must be Modules, got {type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "Sequential":
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential items must be Modules, got {type(module).__name__}")
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} is out of range for {n} modules")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m
        return self

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def _index(self, index: int) -> int:
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"ModuleList index {index} is out of range for {n} modules")
        return index % n

    def __len__(self):
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(self._index(index))]

    def __setitem__(self, index: int, module: Module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList items must be Modules, got {type(module).__name__}")
        self._modules[str(self._index(index))] = module

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList items must be Modules, got {type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        self.extend(items)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is a container and has no forward(); iterate over it instead")


class ModuleDict(Module):
    """A dict of named modules whose parameters are registered (a plain dict would hide them)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; it has {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict values must be Modules, got {type(module).__name__} for {key!r}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the KeyError naming what exists
        self._forget(key)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def update(self, modules) -> None:
        """Add (or replace) modules from a mapping or from (name, module) pairs."""
        for key, module in (modules.items() if hasattr(modules, "items") else modules):
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is a container and has no forward(); index it by name instead")


def _as_parameter(value, where: str) -> Parameter:
    """A Parameter for a container: Parameters as they are, other Tensors wrapped (sharing storage), as PyTorch."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"{where}: expected a Parameter or Tensor, got {type(value).__name__}")


class ParameterList(Module):
    """A list of Parameters that the model registers (a plain list would hide them from the optimizer)."""

    def __init__(self, values=None):
        super().__init__()
        self.extend(values or [])

    def __len__(self):
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def __getitem__(self, index):
        values = list(self._parameters.values())
        if isinstance(index, slice):
            return ParameterList(values[index])
        if not -len(values) <= index < len(values):
            raise IndexError(f"ParameterList index {index} is out of range for {len(values)} parameters")
        return values[index]

    def __setitem__(self, index: int, value) -> None:
        self[index]  # noqa: B018 - the IndexError for a bad index
        self._parameters[str(index % len(self))] = _as_parameter(value, "ParameterList")

    def append(self, value) -> "ParameterList":
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values) -> "ParameterList":
        for v in values:
            self.append(v)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList is a container and has no forward(); iterate over it instead")


class ParameterDict(Module):
    """A dict of named Parameters that the model registers."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key) -> bool:
        return key in self._parameters

    def __getitem__(self, key: str) -> Parameter:
        if key not in self._parameters:
            raise KeyError(f"ParameterDict has no parameter {key!r}; it has {list(self._parameters)}")
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value, f"ParameterDict[{key!r}]"))

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the KeyError naming what exists
        self._forget(key)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def update(self, parameters) -> None:
        for key, value in (parameters.items() if hasattr(parameters, "items") else parameters):
            self[key] = value

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict is a container and has no forward(); index it by name instead")
