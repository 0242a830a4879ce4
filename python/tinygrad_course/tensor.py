"""Tensor and reverse-mode automatic differentiation (define-by-run).

A Tensor wraps a backend array (`._data`: a NumPy array on "cpu", a CuPy array on
"cuda"; see `device.py`; users reach it through `.numpy()`). Every
differentiable operation is a `Function` (see `ops.py`): its `forward` maps
arrays to an array and its `backward` maps the output gradient to one gradient
per input. `Function.apply` runs the forward and, when grad mode is on and an
input requires grad, links the result to the Function node (`_ctx`) so that
`Tensor.backward` can walk the graph in reverse topological order.

Graph lifetime: `backward()` frees the graph it walked (the saved arrays and
the links to the inputs), so a second `backward()` through the same graph
raises an error; pass `retain_graph=True` to keep it. Gradients accumulate
into the `.grad` of leaf tensors (and of non-leaves that called
`retain_grad()`); call `zero_grad()` or set `.grad = None` between steps.
Higher-order gradients are not supported: backward rules work on arrays.

In-place operations (`add_`, `mul_`, `zero_`, `__setitem__`, `copy_`, assigning
`.data`, ...) bump the tensor's version counter, which views and `detach()`
share; a backward that needs an array modified since it was saved raises
instead of returning a wrong gradient. Raw array writes cannot be counted, so
while a live graph holds a tensor's storage for backward, `.data` (a tensor
sharing the storage) and `.numpy()` hand it out read-only; array arguments that are not tensors are
copied when saved. (An array obtained before the save, such as the one given
to `from_numpy`, still aliases the storage: as in PyTorch, writes through it
are not seen.) Only float results are differentiable: an op whose output
is an integer or bool (a cast, a comparison, argmax) never records a node.

Thread safety: several threads may run forward and backward at the same time
on graphs that share leaves (one model, several batches); gradients are
accumulated into `.grad` under a lock, so no update is lost.
"""
from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from collections import namedtuple

import numpy as np

from .device import (array_module, canonical_device, device as _device, is_device_array, is_host_array, to_device,
                     to_numpy)


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# PyTorch's dtypes that a Tensor may hold here; other NumPy dtypes are refused (or, inferred from data, converted)
_DTYPES = (*_FLOAT_DTYPES, *map(np.dtype, (np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_)))
_grad_lock = threading.Lock()  # guards accumulation into .grad (concurrent backward on shared leaves)
_SCALARS = (int, float, bool, np.generic)  # operands that NumPy and CuPy both take as they are
_default_dtype = np.dtype(np.float32)
# what max(dim) and min(dim) return, as torch.return_types.max: unpackable, with .values and .indices
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


# --- grad mode and random state ------------------------------------------------------
class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


class _GradModeContext(contextlib.ContextDecorator):
    """Graph recording on or off inside a `with` block or a decorated function, restored after."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self.previous
        return False


class set_grad_enabled(_GradModeContext):
    """As torch's: a plain call `set_grad_enabled(False)` switches recording at once (until switched
    back); as a context manager or decorator the previous mode comes back after."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self.previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __call__(self, fn):
        _grad_mode.enabled = self.previous  # decorating must not switch the mode of the caller
        return super().__call__(fn)

    def __enter__(self):
        _grad_mode.enabled = self.mode
        return self


def no_grad():
    """Context manager (and decorator) that disables graph recording."""
    return _GradModeContext(False)


_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed the global generator used by rand/randn, initialisers and dropout."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    return _rng


def set_default_dtype(dtype) -> None:
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def _torch_names(fn):
    """Let `fn` take PyTorch's keywords dim= and keepdim= for its axis= and keepdims=."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for torch_name, name in (("dim", "axis"), ("keepdim", "keepdims")):
            if torch_name in kwargs:
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {name}= and {torch_name}=; give only one of them")
                kwargs[name] = kwargs.pop(torch_name)
        return fn(*args, **kwargs)
    return wrapper


def _as_array(data, dtype=None):
    """Convert user data to an array with a supported dtype: NumPy, or CuPy for GPU arrays."""
    if isinstance(data, Tensor):  # a copy, as torch.tensor(t) makes: an alias would escape t's version counter
        data = data._data.copy()
    xp = np if is_host_array(data) or not hasattr(data, "__cuda_array_interface__") else array_module("cuda")
    if dtype is not None:
        if np.dtype(dtype) not in _DTYPES:
            raise TypeError(f"unsupported dtype {np.dtype(dtype)}; tensors hold {', '.join(map(str, _DTYPES))}")
        return xp.asarray(data, dtype=np.dtype(dtype))
    is_array = isinstance(data, (np.ndarray, xp.ndarray))
    arr = xp.asarray(data)
    if arr.dtype.kind == "f":
        # Arrays keep float32/64 (float16 becomes float32); Python floats/lists become the default dtype.
        if not is_array or arr.dtype not in _FLOAT_DTYPES:
            arr = arr.astype(_default_dtype if not is_array else np.float32)
    elif arr.dtype.kind in "iu":  # arrays keep int8/16/32/64 and uint8, as torch.from_numpy; wider unsigned: int64
        if arr.dtype not in _DTYPES:
            arr = arr.astype(np.int64)
    elif arr.dtype.kind != "b":
        raise TypeError(f"unsupported data type {arr.dtype}; use float32, float64, an integer type or bool")
    return arr


# --- autograd ----------------------------------------------------------------------
class _Savers(set):
    """Ids of the live graph nodes that saved a storage.

    A copy (copy.deepcopy, pickle) starts empty: no node of the original graph will ever discard
    itself from it, and the copy's storage is not the one that graph saved.
    """

    def __reduce__(self):
        return _Savers, ()


_new_function_hook = None  # set by an active profile (profiler.py)


class Function:
    """One differentiable operation. Subclasses define `forward` and `backward` on arrays.

    `forward(ctx, *args, **kwargs)` receives Tensor arguments as arrays (other
    arguments unchanged) and returns one array. `backward(ctx, grad)` returns
    one gradient per positional argument (None where there is none). Arrays
    needed by backward are kept with `ctx.save(...)`: one that is the storage
    of a Tensor argument or of the output has its version checked before use
    (and is handed out read-only until the node is freed); any other array
    argument is saved as a copy. An array an op keeps for backward must go
    through `save`, or be one it made itself.
    """

    is_view = False  # True when the output may share storage with the first input
    out_device = None  # set by an op whose output lives on another device than its inputs (ToDevice)
    written = ()  # positions of Tensor arguments that forward updated in place (their version is bumped)
    _versions = ()  # (version counter, version when saved, shape) of each saved storage

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if _new_function_hook is not None:  # a profile is active: it wraps ops defined from now on too
            _new_function_hook(cls)

    def __init__(self):
        self.device = "cpu"
        self.parents = ()
        self.saved = ()
        self._versions = ()
        self.needs_input_grad = ()

    @property
    def xp(self):
        """The array module of this op's device (numpy on "cpu", cupy on "cuda")."""
        return array_module(self.device)

    def save(self, *arrays):
        self.saved = arrays

    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs) -> "Tensor":
        # This runs for every op, so it walks the arguments once and avoids properties.
        tensors, raw, needs = [], [], []
        for a in args:
            if isinstance(a, Tensor):
                tensors.append(a)
                raw.append(a._data)
                needs.append(a.requires_grad)
            else:
                raw.append(a)
                needs.append(False)
        device = tensors[0].device if tensors else "cpu"
        for t in tensors:
            if t.device != device:
                raise RuntimeError(
                    f"{cls.__name__}: tensors are on different devices ({device} and {t.device}); "
                    "move them with .to(device) first")
        ctx = cls()
        ctx.device = device
        ctx.needs_input_grad = needs
        out = ctx.forward(*raw, **kwargs)
        # The one rule for what is differentiable: only a float result records a node (as in PyTorch,
        # integer and bool tensors never require grad), so casts to int or comparisons cut the graph.
        track = _grad_mode.enabled and any(needs) and out.dtype.kind == "f"
        result = Tensor._wrap(out, ctx.out_device or device, requires_grad=track)
        if cls.is_view:
            result._vc = tensors[0]._vc
        for i in ctx.written:
            args[i]._vc[0] += 1
        if track:
            ctx.parents = tuple(a if isinstance(a, Tensor) else None for a in args)
            if ctx.saved:
                tensors.append(result)
                ctx._guard_saved(tensors, args)
            result._ctx = ctx
        return result

    def _guard_saved(self, tensors, args):
        """Keep the saved arrays as forward saw them until backward (see the class docstring)."""
        saved, versions = [], {}
        for s in self.saved:
            owned = False
            for t in tensors:
                if t._data is s:
                    owned = True
                    versions[id(t._vc)] = (t._vc, t._vc[0], t.shape)  # views share one counter
            if not owned and any(s is a for a in args) and (isinstance(s, np.ndarray) or is_device_array(s)):
                s = s.copy()  # the caller's array: nothing would tell us if it changed before backward
            saved.append(s)
        self.saved = tuple(saved)
        self._versions = tuple(versions.values())
        for vc, _, _ in self._versions:
            vc[1].add(id(self))  # set.add is atomic: safe when threads build graphs on shared leaves

    def _check_versions(self):
        for vc, version, shape in self._versions:
            if vc[0] != version:
                raise RuntimeError(
                    f"{type(self).__name__}.backward: a tensor of shape {shape} it saved was modified "
                    f"by an in-place operation or a .data assignment (version {version} -> {vc[0]}); "
                    "use an out-of-place operation (e.g. x = x + 1 instead of x.add_(1))")

    def _release(self):
        """The saved storages are no longer needed by this node: writes to them are allowed again."""
        if self._versions:
            for vc, _, _ in self._versions:
                vc[1].discard(id(self))
            self._versions = ()

    def _free(self):
        self.saved = None
        self.parents = None
        self._release()

    __del__ = _release  # a graph dropped without backward frees its storages too


def _sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to `shape` by summing over broadcast axes."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and grad.shape[i + lead] != 1)
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)


# --- Tensor --------------------------------------------------------------------------
class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation."""

    __array_priority__ = 1000  # make ndarray (op) Tensor defer to Tensor's reflected op
    _hooks = ()  # functions of the gradient, called by backward (see register_hook)
    _post_accumulate_hooks = ()  # functions of the tensor, called after its .grad took a gradient

    def __init__(self, data, requires_grad: bool = False, dtype=None, device: str = "cpu"):
        device = canonical_device(device)
        arr = _as_array(data, dtype)
        if _device_of(arr) != device:
            arr = to_device(arr, device)
        self._data = arr
        self.device = device
        self.grad: Tensor | None = None
        self._ctx: Function | None = None
        # [version, ids of the live graph nodes that saved this storage], shared with views and detach()
        self._vc = [0, _Savers()]
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array, device="cpu", requires_grad=False) -> "Tensor":
        t = cls.__new__(cls)
        t._data = np.asarray(array) if isinstance(array, np.generic) else array  # NumPy ops on 0-d give scalars
        t.device = device if type(device) is _device else canonical_device(device)  # x.device.type works
        t.grad = None
        t._ctx = None
        t._vc = [0, _Savers()]
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # --- basic properties ----------------------------------------------------------
    @property
    def data(self) -> "Tensor":
        """This tensor's storage as a new tensor outside the graph (requires_grad False), as in PyTorch:
        `p.data -= lr * p.grad`, `x.data.numpy()`, `max(out.data, 1)`. `.numpy()` gives the raw array.

        Unlike PyTorch's, writes through it are version-counted like any in-place method (they share
        this tensor's counter), and while a live graph saved this storage for backward it is a
        read-only view: an in-place write raises instead of changing the gradient behind autograd's back.
        """
        t = Tensor._wrap(self._exposed(), self.device)
        t._vc = self._vc
        return t

    @data.setter
    def data(self, value):
        """Make this tensor use `value`'s storage (a Tensor, shared as in PyTorch; an array is converted).
        The shape may change; the dtype must stay (a parameter that requires grad stays float)."""
        value = value._data if isinstance(value, Tensor) else _as_array(value)
        if _device_of(value) != self.device:  # a NumPy array given to a "cuda" tensor, or the reverse
            value = to_device(value, self.device)
        if value.dtype != self._data.dtype:
            raise ValueError(f"data assignment must keep the dtype {self.dtype}, got {value.dtype}; "
                             f"convert the value first (value.to({self.dtype.name}))")
        same = value is self._data or (value.base is self._data and value.shape == self.shape
                                       and value.strides == self._data.strides)  # our own (read-only) view
        if not same:
            self._data = value
            self._vc[0] += 1
        # else `t.data -= x`: the in-place write through t.data already counted the change

    _version = property(lambda self: self._vc[0])
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    is_leaf = property(lambda self: self._ctx is None)
    is_cuda = property(lambda self: self.device == "cuda")
    grad_fn = property(lambda self: self._ctx)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self):
        """The sub-tensors along dim 0; a 0-d tensor refuses, as in PyTorch (not an empty loop)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def size(self, dim: int | None = None):
        """The shape as a tuple, or the length of dimension `dim` (negative counts from the end), as in PyTorch."""
        if dim is None:
            return self.shape
        if not -self.ndim <= dim < self.ndim:
            raise IndexError(f"size: dim {dim} is out of range for a tensor with {self.ndim} dimensions")
        return self.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array (shares memory on "cpu", a copy from "cuda").

        As in PyTorch, a tensor that requires grad refuses unless force=True: call `t.detach().numpy()`.
        The array is read-only while a live graph saved this storage for backward (see `data`).
        """
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return to_numpy(self._exposed())

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t), np.testing on tensors: the values as NumPy, with numpy()'s rules."""
        arr = self.numpy()
        if dtype is not None and arr.dtype != np.dtype(dtype):
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def _exposed(self):
        """The storage for user code: a read-only view of it while a graph node saved it.

        (CuPy arrays have no read-only flag: on "cuda" only the in-place methods are version-checked.)
        """
        arr = self._data
        if self._vc[1] and isinstance(arr, np.ndarray):
            arr = arr.view()
            arr.flags.writeable = False
        return arr

    @property
    def _xp(self):
        """The array module of this tensor's device: numpy or cupy."""
        return array_module(self.device)

    def item(self):
        return self._scalar("item()")

    def tolist(self):
        return self._data.tolist()

    def draw(self, **kwargs):
        """The autograd graph ending here: `viz.draw_graph(self, **kwargs)` (draw before backward() frees it)."""
        from .viz import draw_graph  # viz imports this module
        return draw_graph(self, **kwargs)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._ctx is not None:
            extra = f", grad_fn={type(self._ctx).__name__}"
        if self.device != "cpu":
            extra = f", device='{self.device}'" + extra
        return f"Tensor({np.array2string(to_numpy(self._data), precision=4, separator=', ')}, dtype={self.dtype}{extra})"

    def _scalar(self, what):
        if self._data.size != 1:
            raise ValueError(f"{what} needs a tensor with one element, got shape {self.shape}")
        return self._data.item()

    def __int__(self):
        return int(self._scalar("int()"))

    def __float__(self):
        return float(self._scalar("float()"))

    def __index__(self):
        """An integer tensor of one element works as a Python index (range(n), lst[i]), as in PyTorch."""
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of one element can be used as an index, this one is {self.dtype}")
        return int(self._scalar("__index__"))

    def __format__(self, spec):
        """f"{loss:.4f}" formats the value of a one-element tensor; other tensors take only an empty spec."""
        if self._data.size == 1:
            return format(self._data.item(), spec)
        if spec:
            raise TypeError(f"format spec {spec!r} needs a tensor with one element, got shape {self.shape}; "
                            "format t.tolist() or t.item() instead")
        return str(self)

    def __bool__(self):
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data)

    def __hash__(self):  # by identity, as in PyTorch: == is elementwise, so sets and dicts use `is`
        return id(self)

    # --- autograd interface ----------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require grad, this one is {self.dtype}")
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; use detach()")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> "Tensor":
        """Keep `.grad` for this non-leaf tensor after backward."""
        self._retains_grad = True
        return self

    def register_hook(self, hook):
        """Call hook(grad) when backward has this tensor's gradient; a Tensor it returns replaces the
        gradient (before `.grad` accumulates it). Returns a handle whose remove() unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no gradient will reach it")
        self._hooks = self._hooks + (hook,)
        return _HookHandle(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(self) each time backward has accumulated a gradient into this leaf's `.grad`, as
        PyTorch's (data-parallel training starts reducing a gradient there). Returns a handle with remove()."""
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaves that require grad accumulate a .grad")
        self._post_accumulate_hooks = self._post_accumulate_hooks + (hook,)
        return _HookHandle(self, hook, "_post_accumulate_hooks")

    def _run_hooks(self, g):
        for hook in self._hooks:
            out = hook(Tensor._wrap(g, self.device))
            if out is not None:
                if not isinstance(out, Tensor) or out.shape != self.shape:
                    raise RuntimeError(f"register_hook: a hook must return None or a Tensor of shape {self.shape}, "
                                       f"got {getattr(out, 'shape', type(out).__name__)}")
                g = out._data
        return g

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data, cut off from the graph."""
        t = Tensor._wrap(self._data, self.device)
        t._vc = self._vc
        return t

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * gradient into every leaf that requires grad.

        `gradient` defaults to 1 for a one-element tensor and is required otherwise.
        The graph is freed afterwards unless `retain_graph=True`. Threads may run backward
        concurrently through graphs that share leaves: accumulation into `.grad` is locked.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn; "
                               "did you create it under no_grad() or from tensors without requires_grad?")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward(): gradient can be implied only for a one-element output, "
                                   f"this one has shape {self.shape}; pass gradient= of that shape")
            grad = self._xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = _as_array(gradient, self.dtype)
            if _device_of(grad) != self.device:
                grad = to_device(grad, self.device)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): gradient shape {grad.shape} does not match output shape {self.shape}")

        outer = getattr(_callbacks, "queue", None)
        _callbacks.queue = []
        try:
            self._backward_walk(grad, retain_graph)
            for fn in _callbacks.queue:  # a callback may queue more: the list is walked as it grows
                fn()
        finally:
            _callbacks.queue = outer

    def _backward_walk(self, grad, retain_graph):
        grads = {id(self): grad}
        for node in self._topological_order():
            g = grads.pop(id(node), None)
            ctx = node._ctx
            if g is None:  # no gradient reaches this node; it is still part of the graph to free
                if ctx is not None and not retain_graph:
                    ctx._free()
                continue
            if node._hooks:
                g = node._run_hooks(g)
            if ctx is None or node._retains_grad:
                node._accumulate_grad(g)
                for hook in node._post_accumulate_hooks:
                    hook(node)
            if ctx is None:
                continue
            if ctx.parents is None:
                raise RuntimeError(
                    f"backward through {type(ctx).__name__} a second time: the graph was freed by the first "
                    "backward(); call the first one with retain_graph=True if you need to backward twice")
            ctx._check_versions()
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg in zip(ctx.parents, in_grads):
                if parent is None or pg is None or not parent.requires_grad:
                    continue
                pg = _sum_to_shape(parent._xp.asarray(pg, dtype=parent.dtype), parent.shape)
                key = id(parent)
                grads[key] = grads[key] + pg if key in grads else pg
            if not retain_graph:
                ctx._free()

    def _topological_order(self):
        """Tensors of the graph ending here, outputs before inputs (iterative DFS)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            ctx = node._ctx
            if ctx is not None and ctx.parents:
                for p in ctx.parents:
                    if p is not None and p.requires_grad and id(p) not in seen:
                        stack.append((p, False))
        order.reverse()
        return order

    def _accumulate_grad(self, g):
        with _grad_lock:  # read-add-write: another thread's backward may be accumulating into this leaf
            if self.grad is None:
                self.grad = Tensor._wrap(self._xp.array(g, dtype=self.dtype, copy=True), self.device)
            else:
                self.grad._data = self.grad._data + g

    # --- in-place operations (not recorded in the graph) ---------------------------------
    def _inplace(self, name, array_op):
        if self.requires_grad and _grad_mode.enabled:
            raise RuntimeError(
                f"{name}: in-place operation on a tensor that requires grad (shape {self.shape}) is not "
                "recorded by autograd; do it under no_grad() or use the out-of-place form")
        if isinstance(self._data, np.ndarray) and not self._data.flags.writeable:
            raise RuntimeError(
                f"{name}: the storage of this tensor (shape {self.shape}) is read-only: it is an expand()ed "
                "view, the .data of a tensor that a live graph saved for backward (writable again after backward()), "
                "or built from a read-only array; clone() it first")
        array_op(self._data)
        self._vc[0] += 1
        return self

    def _other_array(self, other):
        if isinstance(other, Tensor):
            _check_dtypes("in-place op", self, other)
            _check_devices("in-place op", self, other)
            return other._data
        return self._operand(other)

    def _operand_tensor(self, value) -> "Tensor":
        """A non-Tensor operand as a Tensor of this dtype and device. A copy: ops save their Tensor
        inputs by reference, and the caller's array has no version counter to say it changed."""
        return Tensor(_on_device(value, self.device, self.dtype).copy(), dtype=self.dtype, device=self.device)

    def _bound(self, value):
        """A clamp bound as clip takes it: None, a scalar, or an array of this dtype on this device."""
        return value if value is None or isinstance(value, _SCALARS) else self._other_array(value)

    def _operand(self, value):
        """A non-Tensor operand as an array of this tensor's dtype and device (scalars stay scalars)."""
        if isinstance(value, _SCALARS):
            return self.dtype.type(value)
        return _on_device(value, self.device, self.dtype)

    def _check_kept_dtype(self, name, other, divides=False):
        """In-place arithmetic keeps the dtype: an integer tensor refuses a float result, as in PyTorch."""
        float_other = isinstance(other, float) or getattr(other, "dtype", np.dtype(int)).kind == "f"
        if self.dtype.kind in "iub" and (float_other or divides):
            raise TypeError(f"{name}: the result is a float, which a {self.dtype} tensor cannot hold in place; "
                            f"convert it first (x = x.float()) or use the out-of-place form")

    def add_(self, other, alpha=1.0):
        self._check_kept_dtype("add_", other)
        o = self._other_array(other)
        xp = self._xp
        return self._inplace("add_", lambda a: xp.add(a, o if alpha == 1.0 else alpha * o, out=a, casting="unsafe"))

    def sub_(self, other, alpha=1.0):
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        self._check_kept_dtype("mul_", other)
        o = self._other_array(other)
        return self._inplace("mul_", lambda a: self._xp.multiply(a, o, out=a, casting="unsafe"))

    def div_(self, other):
        self._check_kept_dtype("div_", other, divides=True)
        o = self._other_array(other)
        return self._inplace("div_", lambda a: self._xp.divide(a, o, out=a, casting="unsafe"))

    # x += y and friends change x in place, as in PyTorch (a manual `w -= lr * w.grad` under no_grad()
    # updates the model's own parameter). Where autograd must record the step (x or y requires grad
    # under grad mode, x not a leaf) the result is computed out of place instead: same values, and
    # the graph stays right. A leaf that requires grad refuses, as in PyTorch.
    def _iop(self, other, method, binary):
        records = _grad_mode.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))
        if records and not self.is_leaf:
            return binary(self, other)
        if records and not self.requires_grad:
            return binary(self, other)  # a constant accumulating something differentiable joins the graph
        return method(self, other)

    def __iadd__(self, o): return self._iop(o, Tensor.add_, Tensor.__add__)
    def __isub__(self, o): return self._iop(o, Tensor.sub_, Tensor.__sub__)
    def __imul__(self, o): return self._iop(o, Tensor.mul_, Tensor.__mul__)
    def __itruediv__(self, o): return self._iop(o, Tensor.div_, Tensor.__truediv__)

    def copy_(self, src):
        o = self._other_array(src)
        return self._inplace("copy_", lambda a: self._xp.copyto(a, o, casting="unsafe"))

    def fill_(self, value):
        return self._inplace("fill_", lambda a: a.fill(value))

    def zero_(self):
        return self.fill_(0)

    def _check_float(self, name):
        if self.dtype.kind != "f":
            raise TypeError(f"{name} fills float tensors, this one is {self.dtype}; convert it with .float() first")

    def normal_(self, mean: float = 0.0, std: float = 1.0):
        """Fill with N(mean, std^2) samples from the global generator (see manual_seed), in place."""
        self._check_float("normal_")
        draw = _rng.normal(mean, std, self.shape).astype(self.dtype)
        return self.copy_(Tensor(draw, dtype=self.dtype, device=self.device))

    def uniform_(self, a: float = 0.0, b: float = 1.0):
        """Fill with U[a, b) samples from the global generator (see manual_seed), in place."""
        self._check_float("uniform_")
        draw = _rng.uniform(a, b, self.shape).astype(self.dtype)
        return self.copy_(Tensor(draw, dtype=self.dtype, device=self.device))

    def clamp_(self, min=None, max=None):
        lo, hi = self._bound(min), self._bound(max)
        return self._inplace("clamp_", lambda a: self._xp.clip(a, lo, hi, out=a))

    def __setitem__(self, index, value):
        index = _index_arrays(index, self)
        o = self._other_array(value) if isinstance(value, Tensor) else self._operand(value)
        split = _ints_first(index)
        if split:  # a[first] is a view: writing into it writes into a
            self._inplace("__setitem__", lambda a: a[split[0]].__setitem__(split[1], o))
        else:
            self._inplace("__setitem__", lambda a: a.__setitem__(index, o))

    # --- conversions ----------------------------------------------------------------
    def astype(self, dtype) -> "Tensor":
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype not in _DTYPES:
            raise TypeError(f"unsupported dtype {dtype}; tensors hold {', '.join(map(str, _DTYPES))}")
        return _ops.Cast.apply(self, dtype=dtype)

    def type(self, dtype=None):
        """Without an argument PyTorch's type string ('torch.FloatTensor', 'torch.LongTensor', ...);
        with a dtype (or such a string) this tensor converted to it, as `astype`."""
        if dtype is None:
            prefix = "torch." if self.device == "cpu" else "torch.cuda."
            return prefix + _TYPE_NAMES[self.dtype.name]
        if isinstance(dtype, str) and dtype.split(".")[-1] in _TYPE_NAMES.values():
            dtype = next(k for k, v in _TYPE_NAMES.items() if v == dtype.split(".")[-1])
        return self.astype(dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return self.astype(np.int64)

    def int(self):
        return self.astype(np.int32)

    def short(self):
        return self.astype(np.int16)

    def char(self):
        return self.astype(np.int8)

    def byte(self):
        return self.astype(np.uint8)

    def bool(self):
        return self.astype(np.bool_)

    def to(self, *args, device=None, dtype=None, non_blocking: bool = False, copy: bool = False) -> "Tensor":
        """This tensor on `device` and/or with `dtype` (itself when nothing changes, unless copy=True);
        differentiable. As in PyTorch the positional forms are to(device), to(dtype), to(device, dtype)
        and to(other_tensor) (its device and dtype); non_blocking is accepted and has no effect."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif _as_dtype(a) is not None:
                dtype = a
            else:
                device = a
        out = self.clone() if copy else self
        if device is not None and canonical_device(device) != self.device:
            out = _ops.ToDevice.apply(self, device=canonical_device(device))
        if dtype is not None:
            out = out.astype(dtype)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def clone(self) -> "Tensor":
        return _ops.Clone.apply(self)

    # --- arithmetic (broadcasting) -----------------------------------------------------
    def _binary(self, other, fn, reverse=False):
        if isinstance(other, Tensor):
            if fn is _ops.Sub and bool in (self.dtype, other.dtype):
                raise TypeError("- with a bool tensor is not supported, as in PyTorch; to invert a mask use ~ "
                                "or logical_not(), else convert it first (mask.float())")
            if self.dtype != other.dtype:  # bool < int < float, as PyTorch promotes (float32 with float64 refuses)
                rank = {"b": 0, "i": 1, "u": 1, "f": 2}
                if rank[self.dtype.kind] < rank[other.dtype.kind]:
                    return self.astype(other.dtype)._binary(other, fn, reverse)
                if rank[self.dtype.kind] > rank[other.dtype.kind]:
                    return self._binary(other.astype(self.dtype), fn, reverse)
                if rank[self.dtype.kind] == 1:  # two integer types: the wider, as NumPy's and torch's rule
                    common = np.promote_types(self.dtype, other.dtype)
                    return self.astype(common)._binary(other.astype(common), fn, reverse)
            _check_dtypes(fn.__name__.lower(), self, other)
            _check_broadcast(fn.__name__.lower(), self, other)
        else:
            if self.dtype.kind in "iub" and isinstance(other, float):
                return self.astype(_default_dtype)._binary(other, fn, reverse)  # 1 + 0.5 is a float
            other = self._operand(other)  # Python scalars take the tensor's dtype
        return fn.apply(other, self) if reverse else fn.apply(self, other)

    def __add__(self, o): return self._binary(o, _ops.Add)
    def __radd__(self, o): return self._binary(o, _ops.Add, reverse=True)
    def __sub__(self, o): return self._binary(o, _ops.Sub)
    def __rsub__(self, o): return self._binary(o, _ops.Sub, reverse=True)
    def __mul__(self, o): return self._binary(o, _ops.Mul)
    def __rmul__(self, o): return self._binary(o, _ops.Mul, reverse=True)
    def __truediv__(self, o): return self._true_div(o)
    def __rtruediv__(self, o): return self._true_div(o, reverse=True)
    def __pow__(self, o): return self._binary(o, _ops.Pow)
    def __rpow__(self, o): return self._binary(o, _ops.Pow, reverse=True)
    def __neg__(self): return _ops.Neg.apply(self)
    def __abs__(self): return self.abs()
    def __matmul__(self, o): return self.matmul(o)
    def __rmatmul__(self, o): return self._operand_tensor(o).matmul(self)

    add, sub, mul, pow = __add__, __sub__, __mul__, __pow__

    def _true_div(self, other, reverse=False):
        """Division of integers (or bools) gives the default float dtype, as in PyTorch (NumPy: float64)."""
        if self.dtype.kind in "iub" and (not isinstance(other, Tensor) or other.dtype.kind in "iub"):
            self = self.astype(_default_dtype)
            other = other.astype(_default_dtype) if isinstance(other, Tensor) else other
        return self._binary(other, _ops.Div, reverse)

    def div(self, other, *, rounding_mode=None):
        """self / other (torch.div): rounding_mode None divides exactly (integers give a float), "trunc"
        rounds toward zero and "floor" down (integers stay integers; not differentiable, as in PyTorch)."""
        if rounding_mode is None:
            return self._true_div(other)
        if rounding_mode == "floor":
            return self.floor_divide(other)
        if rounding_mode != "trunc":
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        if self._integer_with(other):
            o = other._data if isinstance(other, Tensor) else self._operand(other)
            if (o == 0).any():
                raise ZeroDivisionError("div: integer division by zero")
            return Tensor._wrap(self._xp.asarray((self._data - self._xp.fmod(self._data, o)) // o), self.device)
        return (self / other).trunc().detach()

    # comparisons give bool tensors (not differentiable)
    def _compare(self, other, fn):
        if isinstance(other, Tensor):
            _check_devices("comparison", self, other)
            o = other._data
        elif isinstance(other, _SCALARS):
            o = other  # as is: casting it to this dtype would make int_tensor < 0.5 mean int_tensor < 0
        else:
            o = _on_device(other, self.device)  # CuPy refuses NumPy arrays and lists as operands
        return Tensor._wrap(getattr(self._xp, fn)(self._data, o), self.device)

    def __lt__(self, o): return self._compare(o, "less")
    def __le__(self, o): return self._compare(o, "less_equal")
    def __gt__(self, o): return self._compare(o, "greater")
    def __ge__(self, o): return self._compare(o, "greater_equal")
    def eq(self, o): return self._compare(o, "equal")
    def ne(self, o): return self._compare(o, "not_equal")
    lt, le, gt, ge = __lt__, __le__, __gt__, __ge__

    def equal(self, other) -> bool:
        """True when both have the same shape and elements (torch.equal)."""
        return self.shape == other.shape and bool(self._xp.array_equal(self._data, other._data))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return bool(self._xp.allclose(self._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol * |other| elementwise (broadcasting); other a Tensor, or a number
        or array (which torch itself refuses with a TypeError)."""
        if isinstance(other, Tensor):
            _check_devices("isclose", self, other)
            o = other._data
        else:
            o = _on_device(other, self.device)
        return Tensor._wrap(self._xp.asarray(self._xp.isclose(self._data, o, rtol=rtol, atol=atol,
                                                              equal_nan=equal_nan)), self.device)

    # bool results, never differentiable
    def isnan(self): return Tensor._wrap(self._xp.isnan(self._data), self.device)
    def isinf(self): return Tensor._wrap(self._xp.isinf(self._data), self.device)
    def isfinite(self): return Tensor._wrap(self._xp.isfinite(self._data), self.device)
    def logical_not(self): return Tensor._wrap(self._xp.logical_not(self._data), self.device)

    @_torch_names
    def all(self, axis=None, keepdims: bool = False):
        return Tensor._wrap(self._xp.asarray(self._data.all(axis=_axes(axis, self.ndim), keepdims=keepdims)),
                            self.device)

    @_torch_names
    def any(self, axis=None, keepdims: bool = False):
        return Tensor._wrap(self._xp.asarray(self._data.any(axis=_axes(axis, self.ndim), keepdims=keepdims)),
                            self.device)

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def _logical(self, other, fn):
        o = other._data if isinstance(other, Tensor) else _on_device(other, self.device)
        return Tensor._wrap(getattr(self._xp, fn)(self._data, o), self.device)

    def _bitwise(self, other, fn):
        """& | ^ on bool (logical) or integer (bitwise) tensors, as in PyTorch; floats refuse."""
        if self.dtype.kind not in "biu" or (isinstance(other, Tensor) and other.dtype.kind not in "biu") \
                or isinstance(other, float):
            raise TypeError(f"{fn}: needs bool or integer tensors, got {self.dtype} and "
                            f"{getattr(other, 'dtype', type(other).__name__)}")
        return self._logical(other, fn)

    def __and__(self, o): return self._bitwise(o, "bitwise_and")
    def __or__(self, o): return self._bitwise(o, "bitwise_or")
    def __xor__(self, o): return self._bitwise(o, "bitwise_xor")
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got {self.dtype}")
        return Tensor._wrap(self._xp.invert(self._data), self.device)

    def logical_and(self, other): return self._logical(other, "logical_and")
    def logical_or(self, other): return self._logical(other, "logical_or")
    def logical_xor(self, other): return self._logical(other, "logical_xor")

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
        """The distinct elements in ascending order (torch.unique of the flattened tensor); not differentiable."""
        if dim is not None:
            raise TypeError("unique: dim= is not supported yet; leave it out to get the distinct elements")
        values, inverse, counts = np.unique(to_numpy(self._data), return_inverse=True, return_counts=True)
        out = [Tensor(values, device=self.device)]
        if return_inverse:
            out.append(Tensor(inverse.reshape(self.shape).astype(np.int64), device=self.device))
        if return_counts:
            out.append(Tensor(counts.astype(np.int64), device=self.device))
        return out[0] if len(out) == 1 else tuple(out)

    def nonzero(self):
        """The indices of the nonzero elements, one row each: shape (count, ndim), int64 (torch.nonzero)."""
        return Tensor._wrap(self._xp.argwhere(self._data).astype(np.int64), self.device)

    argwhere = nonzero

    @_torch_names
    def count_nonzero(self, axis=None):
        return Tensor._wrap(self._xp.asarray(self._xp.count_nonzero(self._data, axis=_axes(axis, self.ndim)),
                                             dtype=np.int64), self.device)

    # == and != are elementwise, as in PyTorch (tensors still hash by identity: see __hash__);
    # an operand that is no number, array or list (None, a string) compares unequal, as in PyTorch
    def __eq__(self, o):
        return self.eq(o) if isinstance(o, (Tensor, _SCALARS, list, tuple, np.ndarray)) or is_device_array(o) else False

    def __ne__(self, o):
        return self.ne(o) if isinstance(o, (Tensor, _SCALARS, list, tuple, np.ndarray)) or is_device_array(o) else True

    # --- elementwise ---------------------------------------------------------------------
    def _floating(self) -> "Tensor":
        """This tensor, or for integers and bools its values in the default float dtype: the input
        of a float function (exp, log, sin, ...), as PyTorch computes them (float32, not NumPy's float64)."""
        return self if self.dtype.kind == "f" else self.astype(_default_dtype)

    def exp(self): return _ops.Exp.apply(self._floating())
    def log(self): return _ops.Log.apply(self._floating())
    def log1p(self): return _ops.Log1p.apply(self._floating())
    def log10(self): return self.log() * (1 / np.log(10))

    def _unary(self, name, keeps_int=False):
        """An op of ops.UNARY; integers become the default float first, as in PyTorch, unless `keeps_int`."""
        return _ops.Unary.apply(self if keeps_int else self._floating(), name=name)

    def sin(self): return self._unary("sin")
    def cos(self): return self._unary("cos")
    def tan(self): return self._unary("tan")
    def sinh(self): return self._unary("sinh")
    def cosh(self): return self._unary("cosh")
    def asin(self): return self._unary("asin")
    def acos(self): return self._unary("acos")
    def atan(self): return self._unary("atan")
    def reciprocal(self): return self._unary("reciprocal")
    def rsqrt(self): return self._unary("rsqrt")
    def expm1(self): return self._unary("expm1")
    def exp2(self): return self._unary("exp2")
    def log2(self): return self._unary("log2")
    def erf(self): return self._unary("erf")
    def square(self): return self._unary("square", keeps_int=True)
    def sign(self): return self._unary("sign", keeps_int=True)
    def floor(self): return self._unary("floor", keeps_int=True)
    def ceil(self): return self._unary("ceil", keeps_int=True)
    def round(self): return self._unary("round", keeps_int=True)
    def trunc(self): return self._unary("trunc", keeps_int=True)

    def maximum(self, other):
        """Elementwise maximum (torch.maximum); ties share the gradient."""
        return self._binary(other, _ops.Maximum)

    def minimum(self, other):
        return self._binary(other, _ops.Minimum)

    def neg(self): return -self
    true_divide = __truediv__

    def _integer_with(self, other) -> bool:
        """True when this tensor and `other` are integers: integer division stays integer."""
        other_int = other.dtype.kind in "iu" if isinstance(other, Tensor) else not isinstance(other, float)
        return self.dtype.kind in "iu" and other_int

    def floor_divide(self, other):
        """Division rounded down (torch.floor_divide); integers stay integers. Not differentiable, as in PyTorch."""
        if self._integer_with(other):
            o = other._data if isinstance(other, Tensor) else self._operand(other)
            if (o == 0).any():
                raise ZeroDivisionError("floor_divide: integer division by zero")
            return Tensor._wrap(self._xp.floor_divide(self._data, o), self.device)
        return (self / other).floor().detach()

    def remainder(self, other):
        """self - floor(self / other) * other: the sign of the divisor, as Python's % and torch.remainder."""
        if self._integer_with(other):
            return self - self.floor_divide(other) * other
        x = self._floating()
        return x - (x / other).floor().detach() * other

    def fmod(self, other):
        """self - trunc(self / other) * other: the sign of the dividend, as C's fmod and torch.fmod."""
        if self._integer_with(other):
            o = other._data if isinstance(other, Tensor) else self._operand(other)
            if (o == 0).any():
                raise ZeroDivisionError("fmod: integer division by zero")
            return Tensor._wrap(self._xp.fmod(self._data, o), self.device)
        x = self._floating()
        return x - (x / other).trunc().detach() * other

    def __floordiv__(self, o): return self.floor_divide(o)
    def __rfloordiv__(self, o): return self._left_operand(o).floor_divide(self)
    def __mod__(self, o): return self.remainder(o)
    def __rmod__(self, o): return self._left_operand(o).remainder(self)

    def _left_operand(self, value) -> "Tensor":
        """The left operand of a reflected // or % as a Tensor: a Python float with an integer tensor is
        the default float (100.5 % t is 0.5, not 0, as in PyTorch), anything else takes this dtype."""
        if isinstance(value, float) and self.dtype.kind in "iub":
            return Tensor(value, dtype=_default_dtype, device=self.device)
        return self._operand_tensor(value)

    def nan_to_num(self, nan: float = 0.0, posinf=None, neginf=None):
        """NaN, +inf and -inf replaced (by 0 and the dtype's largest and smallest finite values by default);
        the gradient flows where the element is kept."""
        if self.dtype.kind != "f":
            return self
        info = np.finfo(self.dtype)
        out = where(self.isnan(), nan, self)
        out = where(self == np.inf, info.max if posinf is None else posinf, out)
        return where(self == -np.inf, info.min if neginf is None else neginf, out)

    def masked_fill(self, mask, value):
        """`value` where `mask` is True, else this tensor (differentiable in both where they are kept)."""
        return where(mask, value, self)
    def sqrt(self): return _ops.Sqrt.apply(self._floating())
    def abs(self): return _ops.Abs.apply(self)
    def tanh(self): return _ops.Tanh.apply(self._floating())
    def sigmoid(self): return _ops.Sigmoid.apply(self._floating())
    def relu(self): return _ops.Relu.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return _ops.LeakyRelu.apply(self, slope=float(negative_slope))

    def clamp(self, min=None, max=None):
        """Clip to [min, max]; bounds are scalars, arrays or Tensors (Tensor bounds get gradients, as in PyTorch)."""
        if min is None and max is None:
            raise ValueError("clamp: give at least one of min and max")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self  # where() gives each element's gradient to whichever of x and the bound was chosen
            if min is not None:
                out = where(out < min, self._bound(min) if not isinstance(min, Tensor) else min, out)
            if max is not None:
                out = where(out > max, self._bound(max) if not isinstance(max, Tensor) else max, out)
            return out
        return _ops.Clamp.apply(self, self._bound(min), self._bound(max))

    clip = clamp

    # --- matmul -----------------------------------------------------------------------
    def matmul(self, other: "Tensor") -> "Tensor":
        """Matrix product with NumPy semantics: 1-D operands are promoted, batch dims broadcast."""
        if not isinstance(other, Tensor):
            other = self._operand_tensor(other)
        _check_dtypes("matmul", self, other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D, got shapes {self.shape} and {other.shape}")
        a = self.unsqueeze(0) if self.ndim == 1 else self
        b = other.unsqueeze(-1) if other.ndim == 1 else other
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {self.shape} and {other.shape} are not aligned: "
                             f"{a.shape[-1]} (dim -1 of the first) != {b.shape[-2]} (dim -2 of the second)")
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of shapes {self.shape} and {other.shape} "
                             "do not broadcast") from None
        out = _ops.Matmul.apply(a, b)
        if self.ndim == 1:
            out = out.squeeze(-2)
        if other.ndim == 1:
            out = out.squeeze(-1)
        return out

    # --- shape ------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        try:
            resolved = _resolve_shape(self.shape, shape)
        except ValueError as e:
            raise ValueError(f"reshape: cannot reshape tensor of shape {self.shape} to {tuple(shape)}: {e}") from None
        if resolved == self.shape:
            return self
        return _ops.Reshape.apply(self, shape=resolved)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _axis(start_dim, self.ndim), _axis(end_dim, self.ndim)
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    @_torch_names
    def squeeze(self, axis=None):
        if axis is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        axes = {_axis(a, self.ndim) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1)))

    @_torch_names
    def unsqueeze(self, axis: int):
        axis = _axis(axis, self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def permute(self, *axes):
        axes = _shape_arg(axes)
        if sorted(_axis(a, self.ndim) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {tuple(axes)} is not a permutation of the axes of shape {self.shape}")
        return _ops.Permute.apply(self, axes=tuple(_axis(a, self.ndim) for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1):
        axes = list(range(self.ndim))
        d0, d1 = _axis(dim0, self.ndim), _axis(dim1, self.ndim)
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return self.permute(*axes)

    def view_as(self, other: "Tensor"):
        return self.reshape(other.shape)

    def expand_as(self, other: "Tensor"):
        return self.expand(other.shape)

    # new tensors with this one's dtype and device (unless given), as PyTorch's new_* methods
    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad, device=self.device)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad, device=self.device)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad, device=self.device)

    def new_tensor(self, data, dtype=None, requires_grad=False):
        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad, device=self.device)

    def contiguous(self):
        return self  # storage layout is the backend's concern here

    def t(self):
        """The transpose of a matrix; a 0-d or 1-D tensor is returned as it is (torch.t)."""
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with at most 2 dimensions, got shape {self.shape}; "
                             "use transpose(dim0, dim1)")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def swapaxes(self, axis0: int, axis1: int):
        return self.transpose(axis0, axis1)

    def ravel(self):
        return self.reshape(-1)

    def movedim(self, source, destination):
        src = [_axis(a, self.ndim) for a in (source if isinstance(source, (tuple, list)) else (source,))]
        dst = [_axis(a, self.ndim) for a in (destination if isinstance(destination, (tuple, list)) else (destination,))]
        if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise ValueError(f"movedim: source {source} and destination {destination} must be as many distinct dims")
        rest = iter(a for a in range(self.ndim) if a not in src)
        order = [src[dst.index(i)] if i in dst else next(rest) for i in range(self.ndim)]
        return self.permute(*order)

    def narrow(self, dim: int, start: int, length: int):
        d = _axis(dim, self.ndim)
        start = start + self.shape[d] if start < 0 else start
        if not (0 <= start and length >= 0 and start + length <= self.shape[d]):
            raise IndexError(f"narrow: start {start} and length {length} fall outside dim {dim} "
                             f"of size {self.shape[d]}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def unbind(self, dim: int = 0):
        d = _axis(dim, self.ndim)
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def index_select(self, dim: int, index):
        """The slices at the positions in the 1-D int64 `index` along `dim` (torch.index_select)."""
        idx = index._data if isinstance(index, Tensor) else np.asarray(index)
        if idx.ndim > 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"index_select: index must be a 0-D or 1-D integer tensor, "
                            f"got {idx.dtype} of shape {idx.shape}")
        d = _axis(dim, self.ndim)
        return self[(slice(None),) * d + (idx.reshape(-1),)]

    def roll(self, shifts, dims=None):
        """Elements shifted cyclically by `shifts` along `dims` (the flattened tensor without dims)."""
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise ValueError(f"roll: shifts {shifts} and dims {dims} must be as many")
        out = self
        for s, dim in zip(shifts, dims):
            d, n = _axis(dim, self.ndim), self.shape[_axis(dim, self.ndim)]
            out = out[(slice(None),) * d + ((np.arange(n) - s) % max(n, 1),)]
        return out

    def tile(self, *dims):
        dims = _shape_arg(dims)
        return self.repeat(*((1,) * (self.ndim - len(dims)) + tuple(dims)))

    def repeat_interleave(self, repeats, dim=None):
        """Each element (or slice along `dim`) repeated `repeats` times (an int, or one count each)."""
        x, d = (self.reshape(-1), 0) if dim is None else (self, _axis(dim, self.ndim))
        counts = to_numpy(repeats._data) if isinstance(repeats, Tensor) else np.asarray(repeats)
        return x.index_select(d, np.repeat(np.arange(x.shape[d]), counts))

    def tril(self, diagonal: int = 0):
        """The lower triangle of the last two dims (the rest zeroed); the gradient flows where kept."""
        return where(self._xp.tril(self._xp.ones(self.shape[-2:], dtype=bool), diagonal), self, 0)

    def triu(self, diagonal: int = 0):
        return where(self._xp.triu(self._xp.ones(self.shape[-2:], dtype=bool), diagonal), self, 0)

    def diag(self, diagonal: int = 0):
        """A 1-D tensor as the `diagonal`-th diagonal of a square matrix; a matrix's diagonal as 1-D (torch.diag)."""
        k = int(diagonal)
        if self.ndim == 2:
            rows = np.arange(max(0, -k), min(self.shape[0], self.shape[1] - k))
            return self[rows, rows + k]
        if self.ndim != 1:
            raise ValueError(f"diag expects a 1-D or 2-D tensor, got shape {self.shape}")
        m = self.shape[0] + abs(k)
        ext = self.pad((0, abs(k)))  # row r holds x[r] (k >= 0), column c holds x[c] (k < 0)
        spread = ext.reshape(m, 1) if k >= 0 else ext.reshape(1, m)
        return where(self._xp.eye(m, k=k, dtype=bool), spread.expand(m, m), 0)

    def trace(self):
        if self.ndim != 2:
            raise ValueError(f"trace expects a 2-D tensor, got shape {self.shape}")
        n = min(self.shape)
        return self[np.arange(n), np.arange(n)].sum()

    def dot(self, other):
        if self.ndim != 1 or not isinstance(other, Tensor) or other.ndim != 1 or self.shape != other.shape:
            raise ValueError(f"dot: expects two 1-D tensors of the same length, got {self.shape} and "
                             f"{getattr(other, 'shape', type(other).__name__)}")
        return (self * other).sum()

    def outer(self, other):
        return self.reshape(-1, 1) * other.reshape(1, -1)

    def flip(self, *dims):
        dims = _shape_arg(dims)
        return _ops.Flip.apply(self, axes=_axes(dims, self.ndim) or ())

    def repeat(self, *sizes):
        """Tile the tensor `sizes[i]` times along dim i (torch.repeat; extra leading sizes add dims)."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: give at least {self.ndim} sizes for shape {self.shape}, got {sizes}")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        pairs = tuple(d for s in shape for d in (1, s))  # (1, s0, 1, s1, ...): a new axis before each
        tiled = tuple(d for r, s in zip(sizes, shape) for d in (r, s))
        return self.reshape(pairs).expand(tiled).reshape(tuple(r * s for r, s in zip(sizes, shape)))

    def split(self, split_size_or_sections, dim: int = 0):
        """Pieces along `dim`: of `split_size` each (the last may be smaller) or of the listed sizes."""
        d, n = _axis(dim, self.ndim), self.shape[_axis(dim, self.ndim)]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} must add up to {n}, the length of dim {dim}")
        else:
            if split_size_or_sections < 1:
                raise ValueError(f"split: split_size must be >= 1, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)]
        starts = np.cumsum([0] + sizes[:-1])
        return tuple(self[(slice(None),) * d + (slice(int(s), int(s) + k),)] for s, k in zip(starts, sizes))

    def chunk(self, chunks: int, dim: int = 0):
        if chunks < 1:
            raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
        n = self.shape[_axis(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def take_along_dim(self, indices: "Tensor", dim=None):
        """gather with broadcasting of the other dims (torch.take_along_dim); without dim, of the flattened tensor."""
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        d = _axis(dim, self.ndim)
        try:
            shape = list(np.broadcast_shapes(self.shape[:d] + (1,) + self.shape[d + 1:],
                                             indices.shape[:d] + (1,) + indices.shape[d + 1:]))
        except ValueError:
            raise ValueError(f"take_along_dim: shapes {self.shape} and {indices.shape} do not broadcast "
                             f"off dim {dim}") from None
        return self.expand(shape[:d] + [self.shape[d]] + shape[d + 1:]).gather(
            d, indices.expand(shape[:d] + [indices.shape[d]] + shape[d + 1:]))

    def gather(self, dim: int, index: "Tensor"):
        """out[i][j] = self[index[i][j]][j] for dim 0 (and so on), as torch.gather; int64 index."""
        d = _axis(dim, self.ndim)
        if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim != self.ndim:
            raise TypeError(f"gather: index must be an int64 Tensor with {self.ndim} dims like the input {self.shape}")
        if any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
            raise ValueError(f"gather: index shape {index.shape} exceeds the input shape {self.shape} off dim {dim}")
        if index.numel() and (int(index._data.min()) < -self.shape[d] or int(index._data.max()) >= self.shape[d]):
            raise IndexError(f"gather: index out of range for dim {dim} of size {self.shape[d]}")
        part = self[tuple(slice(None) if k == d else slice(0, i) for k, i in enumerate(index.shape))]
        return _ops.Gather.apply(part, index, axis=d)

    def _scatter_args(self, name, dim, index, src, value=None, reduce=None, scalar_ok=True):
        """PyTorch's checks of scatter's arguments: (axis, src as a Tensor or as a scalar of this dtype)."""
        if reduce is not None:
            raise NotImplementedError(f"{name}: reduce={reduce!r} is not supported (PyTorch deprecates it and "
                                      "does not differentiate it); for reduce='add' use scatter_add(dim, index, src)")
        if (src is None) == (value is None):
            raise TypeError(f"{name}: give exactly one of src (a Tensor) and value (a number): "
                            f"{name}(dim, index, src) or {name}(dim, index, value=1.0)")
        src = value if src is None else src
        if not isinstance(src, Tensor) and not (scalar_ok and isinstance(src, _SCALARS)):
            raise TypeError(f"{name}: src must be a Tensor{' or a number' if scalar_ok else ''}, "
                            f"not {type(src).__name__}")
        if self.ndim == 0:
            raise ValueError(f"{name}: the tensor is 0-d; reshape(1) it first")
        d = _axis(dim, self.ndim)
        if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim != self.ndim:
            got = f"{index.dtype} Tensor of shape {index.shape}" if isinstance(index, Tensor) else type(index).__name__
            raise TypeError(f"{name}: index must be an int64 Tensor with {self.ndim} dims like self {self.shape}, "
                            f"got {got}")
        _check_devices(f"{name} (index)", self, index)
        if isinstance(src, Tensor):
            _check_dtypes(f"{name} (src)", self, src)
            _check_devices(f"{name} (src)", self, src)
            if src.ndim != self.ndim:
                raise ValueError(f"{name}: src must have {self.ndim} dims like self {self.shape}, got {src.shape}")
            if any(i > s for i, s in zip(index.shape, src.shape)):
                raise ValueError(f"{name}: index shape {index.shape} exceeds the src shape {src.shape}")
        else:
            src = self._operand(src)
        if any(i > s for k, (i, s) in enumerate(zip(index.shape, self.shape)) if k != d):
            raise ValueError(f"{name}: index shape {index.shape} exceeds the shape of self {self.shape} off dim {dim}")
        if index.numel() and (int(index._data.min()) < -self.shape[d] or int(index._data.max()) >= self.shape[d]):
            raise IndexError(f"{name}: index out of range for dim {dim} of size {self.shape[d]} (values "
                             f"{int(index._data.min())}..{int(index._data.max())})")
        return d, src

    def scatter(self, dim: int, index: "Tensor", src=None, *, value=None, reduce=None):
        """A copy with src[i][j] written at [index[i][j]][j] for dim 0 (and so on), as torch.scatter; src a
        Tensor or a number (value=, e.g. one-hot: zeros(n, k).scatter(1, labels[:, None], 1.0)). Where
        index repeats a position one of its writes wins. reduce= is not supported (see scatter_add)."""
        d, src = self._scatter_args("scatter", dim, index, src, value, reduce)
        return _ops.Scatter.apply(self, index, src, axis=d, add=False)

    def scatter_add(self, dim: int, index: "Tensor", src: "Tensor"):
        """A copy with src[i][j] added at [index[i][j]][j] for dim 0 (and so on; repeated positions
        accumulate), as torch.scatter_add."""
        d, src = self._scatter_args("scatter_add", dim, index, src, scalar_ok=False)
        return _ops.Scatter.apply(self, index, src, axis=d, add=True)

    def _scatter_inplace(self, name, d, index, src, add):
        xp = self._xp
        where = _ops.along_axis(xp, index._data, d)
        o = src._data[tuple(slice(0, n) for n in index.shape)].copy() if isinstance(src, Tensor) else src
        if add:
            return self._inplace(name, lambda a: xp.add.at(a, where, o))
        return self._inplace(name, lambda a: a.__setitem__(where, o))

    def scatter_(self, dim: int, index: "Tensor", src=None, *, value=None, reduce=None):
        """In-place scatter (not recorded by autograd, as the other in-place methods)."""
        d, src = self._scatter_args("scatter_", dim, index, src, value, reduce)
        return self._scatter_inplace("scatter_", d, index, src, add=False)

    def scatter_add_(self, dim: int, index: "Tensor", src: "Tensor"):
        """In-place scatter_add (not recorded by autograd, as the other in-place methods)."""
        d, src = self._scatter_args("scatter_add_", dim, index, src, scalar_ok=False)
        return self._scatter_inplace("scatter_add_", d, index, src, add=True)

    # --- PyTorch ops for ported scripts: cummax ... unflatten, shifts --------------------------
    def _cumulative_extreme(self, dim, better):
        """(values, indices) of the running max or min along dim (torch.cummax / cummin): a tie takes the
        later index, a NaN wins and stays; the values are a gather of self, so they are differentiable."""
        d = _axis(dim, max(self.ndim, 1))  # a 0-d tensor takes dim 0 or -1, as in PyTorch
        if self.ndim == 0:
            return ValuesIndices(self.clone(), Tensor._wrap(self._xp.zeros((), dtype=np.int64), self.device))
        a = np.moveaxis(to_numpy(self._data), d, -1)
        isnan = np.isnan if a.dtype.kind == "f" else (lambda v: np.zeros(np.shape(v), dtype=bool))
        idx = np.zeros(a.shape, dtype=np.int64)
        if a.shape[-1]:
            best, at = a[..., 0], np.zeros(a.shape[:-1], dtype=np.int64)
            for t in range(a.shape[-1]):
                x = a[..., t]
                take = isnan(x) | (~isnan(best) & better(x, best))
                best, at = np.where(take, x, best), np.where(take, t, at)
                idx[..., t] = at
        indices = Tensor(np.ascontiguousarray(np.moveaxis(idx, -1, d)), device=self.device)
        return ValuesIndices(self.gather(d, indices), indices)

    def cummax(self, dim: int):
        """The running maximum along dim as (values, indices), as torch.cummax."""
        return self._cumulative_extreme(dim, np.greater_equal)

    def cummin(self, dim: int):
        """The running minimum along dim as (values, indices), as torch.cummin."""
        return self._cumulative_extreme(dim, np.less_equal)

    def logcumsumexp(self, dim: int):
        """log(cumsum(exp(self), dim)) without overflow (torch.logcumsumexp); integers become the default float."""
        x, axis = self._floating(), _axis(dim, max(self.ndim, 1))  # a 0-d tensor takes dim 0 or -1
        return _ops.LogCumSumExp.apply(x, axis=axis) if self.ndim else x.clone()

    def asinh(self): return self._unary("asinh")
    def acosh(self): return self._unary("acosh")
    def atanh(self): return self._unary("atanh")
    arcsinh, arccosh, arctanh = asinh, acosh, atanh

    def _float_pair(self, name, other):
        """self and other (a Tensor or a number) as tensors of one float dtype, as PyTorch promotes them."""
        if not isinstance(other, Tensor):
            x = self._floating()
            return x, x._operand_tensor(other)
        _check_devices(name, self, other)
        floats = [t.dtype for t in (self, other) if t.dtype.kind == "f"]
        dtype = np.result_type(*floats) if floats else _default_dtype
        x, o = (t if t.dtype == dtype else t.astype(dtype) for t in (self, other))
        _check_broadcast(name, x, o)
        return x, o

    def copysign(self, other):
        """|self| with the sign of other (a Tensor or number), as a float (torch.copysign); the gradient
        flows to self only."""
        return _ops.CopySign.apply(*self._float_pair("copysign", other))

    def logaddexp(self, other):
        """log(exp(self) + exp(other)) without overflow (torch.logaddexp)."""
        x, o = self._float_pair("logaddexp", other)
        xp = x._xp
        top = xp.maximum(x._data, o._data)
        shift = Tensor._wrap(xp.where(xp.isfinite(top), top, 0).astype(x.dtype), x.device)  # a constant
        return ((x - shift).exp() + (o - shift).exp()).log() + shift

    def lerp(self, end, weight):
        """self + weight * (end - self) (torch.lerp); weight a number or a Tensor; differentiable in all."""
        return self + weight * (end - self)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1):
        """The diagonal of each (dim1, dim2) plane, appended as the last dim, as torch.diagonal (a copy here,
        not a view); offset > 0 is above the main diagonal, < 0 below."""
        if self.ndim < 2:
            raise ValueError(f"diagonal: needs at least 2 dims, got shape {self.shape}")
        d1, d2 = _axis(dim1, self.ndim), _axis(dim2, self.ndim)
        if d1 == d2:
            raise ValueError(f"diagonal: dim1 and dim2 must be different dims, both are {d1}")
        x = self.permute(*[i for i in range(self.ndim) if i not in (d1, d2)], d1, d2)
        start, stop = max(0, -offset), min(x.shape[-2], x.shape[-1] - offset)
        rows = np.arange(start, max(start, stop))
        return x[(Ellipsis, rows, rows + offset)]

    def masked_select(self, mask):
        """The elements where the bool mask (broadcast with self) is True, as a 1-D tensor (torch.masked_select)."""
        if not isinstance(mask, Tensor) or mask.dtype != bool:
            got = getattr(mask, "dtype", type(mask).__name__)
            raise TypeError(f"masked_select: mask must be a bool Tensor, got {got}; make one with a comparison (x > 0)")
        _check_devices("masked_select", self, mask)
        try:
            shape = np.broadcast_shapes(self.shape, mask.shape)
        except ValueError:
            raise ValueError(f"masked_select: mask of shape {mask.shape} does not broadcast with {self.shape}") \
                from None
        x = self if self.shape == shape else self.expand(*shape)
        return x[self._xp.broadcast_to(mask._data, shape)]

    def _shift(self, other, fn, reverse=False):
        """<< and >> of integer tensors (and Python ints), as in PyTorch; floats and bools refuse."""
        if self.dtype.kind not in "iu" or (isinstance(other, Tensor) and other.dtype.kind not in "iu") \
                or isinstance(other, (float, bool)):
            raise TypeError(f"{fn}: needs integer tensors (or an int), got {self.dtype} and "
                            f"{getattr(other, 'dtype', type(other).__name__)}; convert with .long()")
        if isinstance(other, Tensor):
            _check_devices(fn, self, other)
        o = other._data if isinstance(other, Tensor) else self._operand(other)  # an int keeps this dtype
        a, b = (o, self._data) if reverse else (self._data, o)
        return Tensor._wrap(self._xp.asarray(getattr(self._xp, fn)(a, b)), self.device)

    def __lshift__(self, o): return self._shift(o, "left_shift")
    def __rshift__(self, o): return self._shift(o, "right_shift")
    def __rlshift__(self, o): return self._shift(o, "left_shift", reverse=True)
    def __rrshift__(self, o): return self._shift(o, "right_shift", reverse=True)
    bitwise_left_shift, bitwise_right_shift = __lshift__, __rshift__

    def unflatten(self, dim: int, sizes):
        """Split dim into the shape `sizes` (one entry may be -1), as torch.unflatten."""
        d = _axis(dim, self.ndim)
        sizes = tuple(int(s) for s in sizes)
        known = int(np.prod([s for s in sizes if s != -1]))
        if not sizes or sizes.count(-1) > 1 or any(s < -1 for s in sizes) or (
                self.shape[d] != known if -1 not in sizes else known == 0 or self.shape[d] % known):
            raise ValueError(f"unflatten: sizes {sizes} do not multiply to dim {dim}'s size {self.shape[d]} "
                             "(at most one -1 is inferred)")
        return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])

    def type_as(self, other: "Tensor"):
        return self.astype(other.dtype)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def expand(self, *shape):
        """Broadcast to `shape` without copying; -1 keeps a dimension as it is."""
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
        try:
            target = np.broadcast_shapes(self.shape, tuple(shape))
        except ValueError:
            raise ValueError(f"expand: cannot broadcast shape {self.shape} to {tuple(shape)}") from None
        if target != tuple(shape):
            raise ValueError(f"expand: cannot broadcast shape {self.shape} to {tuple(shape)}")
        return _ops.Expand.apply(self, shape=target)

    broadcast_to = expand

    def __getitem__(self, index):
        index = _index_arrays(index, self)
        split = _ints_first(index)
        if split:
            return self[split[0]][split[1]]
        return _ops.GetItem.apply(self, index=index)

    def pad(self, pad, value: float = 0.0):
        """Constant padding, PyTorch order: (left, right) of the last dim, then of the one before, ..."""
        pad = tuple(int(p) for p in pad)
        if len(pad) % 2 or len(pad) // 2 > self.ndim or any(p < 0 for p in pad):
            raise ValueError(f"pad: {pad} must be non-negative (before, after) pairs for at most "
                             f"{self.ndim} dims of shape {self.shape}")
        widths = [(0, 0)] * (self.ndim - len(pad) // 2)
        widths += [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))]
        return _ops.Pad.apply(self, widths=tuple(widths), value=value)

    # --- reductions (axis= and keepdims=, or PyTorch's dim= and keepdim=) --------------------
    @_torch_names
    def sum(self, axis=None, keepdims: bool = False):
        """The sum of all elements, or along axes (dim); bools and integers give int64, as in PyTorch."""
        x = self if self.dtype.kind == "f" or self.dtype == np.int64 else self.astype(np.int64)
        return _ops.Sum.apply(x, axis=_axes(axis, self.ndim), keepdims=keepdims)

    @_torch_names
    def mean(self, axis=None, keepdims: bool = False):
        axes = _axes(axis, self.ndim)
        n = int(np.prod([self.shape[a] for a in axes])) if axes is not None else self.numel()
        return self.sum(axes, keepdims) * (1.0 / n if n else math.nan)  # the mean of nothing is NaN, as in PyTorch

    @_torch_names
    def var(self, axis=None, keepdims: bool = False, correction: int = 1, unbiased: bool | None = None):
        """Variance with PyTorch's default Bessel correction (correction=1, or unbiased=True); 0 for the biased one."""
        correction = correction if unbiased is None else int(bool(unbiased))
        self._warn_without_freedom("var", axis, correction)
        return _ops.Var.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims, correction=correction)

    @_torch_names
    def std(self, axis=None, keepdims: bool = False, correction: int = 1, unbiased: bool | None = None):
        """Standard deviation; its gradient is 0 (not NaN) where the data are constant, as in PyTorch."""
        correction = correction if unbiased is None else int(bool(unbiased))
        self._warn_without_freedom("std", axis, correction)
        return _ops.Std.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims, correction=correction)

    def _warn_without_freedom(self, name, axis, correction):
        """PyTorch's warning when the correction leaves no degrees of freedom (the result is inf or NaN)."""
        axes = _axes(axis, self.ndim)
        n = self.numel() if axes is None else int(np.prod([self.shape[a] for a in axes]))
        if n <= correction:
            warnings.warn(f"{name}(): {n} elements per reduction with correction={correction} leave no degrees "
                          "of freedom: the result is inf, or NaN where the data are constant", UserWarning,
                          stacklevel=4)

    @_torch_names
    def norm(self, p=2, axis=None, keepdims: bool = False):
        """The p-norm over all elements or `axis` (dim): p=2 (or 'fro', the default), 1, inf, or any p > 0.

        The 2-norm's gradient at zero is 0, as in PyTorch (a subgradient, not the NaN of sqrt at 0)."""
        if p in (2, "fro"):
            return _ops.Norm2.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)
        if isinstance(p, str) or not p > 0:
            raise ValueError(f"norm: p must be 'fro' or a number > 0 (inf for the largest |x|), got {p!r}")
        if p == float("inf"):
            return self.abs().amax(axis, keepdims)
        if p == 1:
            return self.abs().sum(axis, keepdims)
        return (self.abs() ** p).sum(axis, keepdims) ** (1.0 / p)

    @_torch_names
    def amax(self, axis=None, keepdims: bool = False):
        """The maximum over an axis or a tuple of axes (all of them by default); ties share the gradient."""
        return _ops.Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    @_torch_names
    def amin(self, axis=None, keepdims: bool = False):
        return _ops.Min.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    @_torch_names
    def max(self, axis=None, keepdims: bool = False):
        """The maximum value; with an int axis (dim), the pair (values, indices), as torch.max(x, dim)."""
        if axis is None or isinstance(axis, (tuple, list)):
            return self.amax(axis, keepdims)
        return ValuesIndices(self.amax(axis, keepdims), self.argmax(axis, keepdims))

    @_torch_names
    def min(self, axis=None, keepdims: bool = False):
        """The minimum value; with an int axis (dim), the pair (values, indices), as torch.min(x, dim)."""
        if axis is None or isinstance(axis, (tuple, list)):
            return self.amin(axis, keepdims)
        return ValuesIndices(self.amin(axis, keepdims), self.argmin(axis, keepdims))

    @_torch_names
    def cumsum(self, axis: int):
        x = self if self.dtype.kind == "f" else self.astype(np.int64)  # bools count as integers
        axis = _axis(axis, max(self.ndim, 1))  # a 0-d tensor takes dim 0 or -1, as in PyTorch
        return _ops.CumSum.apply(x, axis=axis) if self.ndim else x.clone()

    @_torch_names
    def median(self, axis=None, keepdims: bool = False):
        """The lower median, as torch.median (no averaging of the middle two); with dim (values, indices)."""
        if axis is None:
            return self.reshape(-1).sort().values[(self.numel() - 1) // 2]
        d = _axis(axis, self.ndim)
        values, indices = self.sort(d)
        pick = (slice(None),) * d + (slice((self.shape[d] - 1) // 2, (self.shape[d] - 1) // 2 + 1),)
        values, indices = values[pick], indices[pick]
        return ValuesIndices(values if keepdims else values.squeeze(d), indices if keepdims else indices.squeeze(d))

    @_torch_names
    def prod(self, axis=None, keepdims: bool = False):
        """The product of all elements, or along one axis (dim); bools and integers give int64, as in PyTorch."""
        x = self if self.dtype.kind == "f" else self.astype(np.int64)
        if axis is None:
            out = _ops.Prod.apply(x.reshape(-1), axis=0, keepdims=False)
            return out.reshape((1,) * self.ndim) if keepdims else out
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"prod: axis (dim) must be an int or None, got {axis}")
        return _ops.Prod.apply(x, axis=_axis(axis, self.ndim), keepdims=keepdims) if self.ndim else x

    @_torch_names
    def cumprod(self, axis: int):
        x = self if self.dtype.kind == "f" else self.astype(np.int64)
        axis = _axis(axis, max(self.ndim, 1))  # a 0-d tensor takes dim 0 or -1, as in PyTorch
        return _ops.CumProd.apply(x, axis=axis) if self.ndim else x.clone()

    def sort(self, dim: int = -1, descending: bool = False):
        """(values, indices) sorted along `dim` (stable); values are differentiable."""
        indices = self.argsort(dim, descending)
        return ValuesIndices(self.gather(dim, indices) if self.ndim else self, indices)

    def argsort(self, dim: int = -1, descending: bool = False):
        if self.ndim == 0:
            return Tensor._wrap(self._xp.zeros((), dtype=np.int64), self.device)
        d = _axis(dim, self.ndim)
        # descending: a stable sort of the reversed axis, reversed back, keeps ties in their order
        data = self._xp.flip(self._data, d) if descending else self._data
        idx = self._xp.argsort(data, axis=d, kind="stable")
        if descending:
            idx = self._xp.flip(self.shape[d] - 1 - idx, d)
        return Tensor._wrap(idx.astype(np.int64, copy=False), self.device)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        """The k largest (or smallest) elements along `dim` as (values, indices), largest first."""
        d = _axis(dim, self.ndim)
        if not 0 <= k <= (self.shape[d] if self.ndim else 1):
            raise ValueError(f"topk: k={k} is out of range for dim {dim} of shape {self.shape}")
        indices = self.argsort(dim, descending=largest)
        if self.ndim:
            indices = indices[(slice(None),) * d + (slice(0, k),)]
        return ValuesIndices(self.gather(dim, indices) if self.ndim else self, indices)

    def _arg(self, fn, axis, keepdims):
        if self.numel() == 0:
            raise ValueError(f"{fn} of an empty tensor of shape {self.shape}")
        axes = _axes(axis, self.ndim)
        if axes is not None and len(axes) != 1:
            raise TypeError(f"{fn}: axis (dim) must be an int or None, got {axis}")
        out = getattr(self._xp, fn)(self._data, axis=None if axes is None else axes[0], keepdims=keepdims)
        if axes is None and keepdims:  # PyTorch keeps every dimension as 1
            out = out.reshape((1,) * self.ndim)
        return Tensor._wrap(self._xp.asarray(out, dtype=np.int64), self.device)

    @_torch_names
    def argmax(self, axis=None, keepdims: bool = False):
        return self._arg("argmax", axis, keepdims)

    @_torch_names
    def argmin(self, axis=None, keepdims: bool = False):
        return self._arg("argmin", axis, keepdims)

    @_torch_names
    def logsumexp(self, axis=-1, keepdims: bool = False):
        if self.ndim == 0:
            return self
        return _ops.LogSumExp.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    @_torch_names
    def softmax(self, axis: int = -1):
        return _ops.Softmax.apply(self, axis=_axes(axis, self.ndim))

    @_torch_names
    def log_softmax(self, axis: int = -1):
        return _ops.LogSoftmax.apply(self, axis=_axes(axis, self.ndim))


# --- helpers used by Tensor methods ---------------------------------------------------
class _HookHandle:
    def __init__(self, tensor, hook, kind="_hooks"):
        self._tensor, self._hook, self._kind = tensor, hook, kind

    def remove(self):
        setattr(self._tensor, self._kind, tuple(h for h in getattr(self._tensor, self._kind) if h is not self._hook))


_callbacks = threading.local()  # per thread: functions to call when the running backward() ends


def queue_backward_callback(fn) -> None:
    """Call fn() once the backward() now running on this thread has finished (a hook's way to act after
    all gradients are in: data-parallel training waits for its reductions there). Outside a backward
    it is an error."""
    queued = getattr(_callbacks, "queue", None)
    if queued is None:
        raise RuntimeError("queue_backward_callback: no backward() is running on this thread")
    queued.append(fn)


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor", "int32": "IntTensor",
               "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def _check_dtypes(op, a: Tensor, b: Tensor):
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: dtypes differ ({a.dtype} with shape {a.shape} and {b.dtype} with shape "
                        f"{b.shape}); convert one with .float(), .double() or .astype()")


def _check_devices(op, a: Tensor, b: Tensor):
    if a.device != b.device:
        raise RuntimeError(f"{op}: tensors are on different devices ({a.device} with shape {a.shape} and "
                           f"{b.device} with shape {b.shape}); move one with .to(device) first")


def _device_of(array) -> str:
    """Where an array lives. Under CUDA emulation "cuda" storage is NumPy too, so ask the caller."""
    return "cpu" if is_host_array(array) else "cuda"


def _on_device(value, device: str, dtype=None):
    """Array-like `value` (list, NumPy or CuPy array) as an array on `device`; host data take `dtype`.

    CuPy refuses numpy.ndarray operands (even 0-d ones) and NumPy refuses to convert CuPy arrays
    (np.asarray(cupy_array) raises TypeError), so arrays are moved rather than converted.
    """
    if isinstance(value, (list, tuple)) and any(isinstance(v, Tensor) for v in value):
        # NumPy would read the tensors as nested sequences: x + x.max(0) must not mean x + [values, indices]
        raise TypeError("a list or tuple of Tensors is not an operand; combine them with stack() first "
                        "(max(dim) and min(dim) give (values, indices): take .values)")
    if not is_device_array(value):
        value = np.asarray(value, dtype=dtype)
    return value if _device_of(value) == device else to_device(value, device)


def _check_broadcast(op, a: Tensor, b: Tensor):
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def _axis(axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexError(f"axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % max(ndim, 1)


def _axes(axis, ndim):
    """Normalise an axis argument (None, int or sequence) to None or a sorted tuple.

    A 0-d tensor takes axis 0 or -1 as PyTorch allows, meaning the whole (one-element) tensor: None.
    """
    if axis is None:
        return None
    listed = [_axis(a, ndim) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    if len(set(listed)) != len(listed):
        raise ValueError(f"axis {axis} names an axis twice")
    return tuple(sorted(listed)) if ndim else None


def _as_dtype(value):
    """`value` as a NumPy dtype when it names one (np.float32, "float64", tg.int64), else None (a device)."""
    if value is None or (isinstance(value, str) and value.strip().lower().split(":")[0] in ("cpu", "cuda")):
        return None
    try:
        return np.dtype(value)
    except TypeError:
        return None


def _is_int(i) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _ints_first(index):
    """PyTorch's order for an index that mixes integers and index arrays: (integers, the rest), else None.

    PyTorch takes integers as plain selections before the index arrays; NumPy counts them among the
    arrays, so zeros(2, 3, 4)[0, :, [0, 1]] is (2, 3) in NumPy and (3, 2) in PyTorch.
    """
    if not (isinstance(index, tuple) and _ops._is_advanced(index) and any(_is_int(i) for i in index)):
        return None
    first = tuple(i if _is_int(i) or i is Ellipsis else slice(None) for i in index if i is not None)
    return first, tuple(i for i in index if not _is_int(i))


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _resolve_shape(old, new):
    size = int(np.prod(old))
    new = tuple(int(s) for s in new)
    if new.count(-1) > 1:
        raise ValueError("only one dimension can be -1")
    known = int(np.prod([s for s in new if s != -1]))
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"{size} elements do not fill the shape")
        new = tuple(size // known if s == -1 else s for s in new)
    if int(np.prod(new)) != size:
        raise ValueError(f"{size} elements cannot take a shape with {int(np.prod(new))}")
    return new


def _index_arrays(index, target: Tensor):
    """Replace Tensors and arrays inside an index by arrays on the indexed tensor's device."""
    def one(i):
        if isinstance(i, Tensor):
            _check_devices("indexing", target, i)
            return i._data
        if isinstance(i, (list, np.ndarray)) and target.device != "cpu":
            return to_device(np.asarray(i), target.device)
        if is_device_array(i) and target.device == "cpu":  # NumPy cannot index with a CuPy array
            return to_numpy(i)
        return i
    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)


# --- creation ------------------------------------------------------------------------
def tensor(data, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A new tensor from a list, scalar or array (Python floats become the default dtype).

    Always a copy, as torch.tensor: a later write to the caller's array cannot reach the tensor
    (or a gradient computed from it). `from_numpy` shares the array's memory instead."""
    if is_host_array(data) or hasattr(data, "__cuda_array_interface__"):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing the array's memory (float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _filled(fill, shape, dtype, requires_grad, device):
    dtype = np.dtype(dtype) if dtype is not None else _default_dtype
    return Tensor(np.full(_shape_arg(shape), fill, dtype=dtype), requires_grad=requires_grad, device=device)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu") -> Tensor:
    return _filled(0, shape, dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device="cpu") -> Tensor:
    return _filled(1, shape, dtype, requires_grad, device)


def full(shape, fill_value, dtype=None, requires_grad=False, device="cpu") -> Tensor:
    """A tensor of `fill_value`; without dtype, as in PyTorch: bool for a bool, int64 for an int, else the default."""
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    return _filled(fill_value, (shape,), dtype, requires_grad, device)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def _generator_rng(generator) -> np.random.Generator:
    """The NumPy generator behind `generator=` (a tinygrad_course.Generator), else the global one."""
    if generator is None:
        return _rng
    rng = getattr(generator, "_rng", None)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"generator must be a tinygrad_course.Generator, got {type(generator).__name__}")
    return rng


def rand(*shape, generator=None, dtype=None, requires_grad=False, device="cpu") -> Tensor:
    """Uniform [0, 1) samples from `generator`, else the global generator (see manual_seed)."""
    dtype = np.dtype(dtype) if dtype is not None else _default_dtype
    samples = _generator_rng(generator).random(_shape_arg(shape))
    return Tensor(samples.astype(dtype), requires_grad=requires_grad, device=device)


def randn(*shape, generator=None, dtype=None, requires_grad=False, device="cpu") -> Tensor:
    """Standard normal samples from `generator`, else the global generator (see manual_seed)."""
    dtype = np.dtype(dtype) if dtype is not None else _default_dtype
    samples = _generator_rng(generator).standard_normal(_shape_arg(shape))
    return Tensor(samples.astype(dtype), requires_grad=requires_grad, device=device)


def arange(start=0, end=None, step=1, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Values from start (inclusive) to end (exclusive) by step, as torch.arange: arange(end),
    arange(start, end[, step]) or with keywords (end= as torch names it); integers give int64."""
    if end is None:
        start, end = 0, start
    values = np.arange(start, end, step)
    if dtype is None and values.dtype.kind == "f":
        dtype = _default_dtype
    return Tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


@_torch_names
def concat(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    first = tensors[0]
    ax = _axis(axis, first.ndim)
    for t in tensors[1:]:
        _check_dtypes("concat", first, t)
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != ax):
            raise ValueError(f"concat along axis {axis}: shapes {[x.shape for x in tensors]} differ off that axis")
    return _ops.Concat.apply(*tensors, axis=ax)


cat = concat


@_torch_names
def stack(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: all shapes must be equal, got {[t.shape for t in tensors]}")
    ax = _axis(axis, tensors[0].ndim + 1)
    return concat([t.unsqueeze(ax) for t in tensors], axis=ax)


def where(condition, a, b) -> Tensor:
    """Elementwise `a if condition else b` (broadcasting); differentiable in a and b. With two numbers
    (and a Tensor condition) their common dtype, as torch.where(mask, 1.0, 0.0)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if not (isinstance(condition, Tensor) and isinstance(a, _SCALARS) and isinstance(b, _SCALARS)):
            raise TypeError("where: give at least one of a and b as a Tensor, or a Tensor condition and two numbers")
        a = Tensor(np.asarray(a, dtype=_as_array([a, b]).dtype), device=condition.device)
    ref = a if isinstance(a, Tensor) else b
    if isinstance(condition, Tensor):  # passed to the op as a Tensor: its version counter covers it
        _check_devices("where", ref, condition)
        cond = condition if condition.dtype == bool else condition.astype(bool)
    else:  # a list, a NumPy array or a CuPy array (np.asarray would refuse the last)
        cond = _on_device(condition, ref.device).astype(bool, copy=False)
    a = a if isinstance(a, Tensor) else ref._xp.asarray(ref._operand(a))
    b = b if isinstance(b, Tensor) else ref._xp.asarray(ref._operand(b))
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        _check_dtypes("where", a, b)
        _check_devices("where", a, b)
    shape_a, shape_b = a.shape, b.shape  # Tensors and arrays alike
    try:
        np.broadcast_shapes(cond.shape, shape_a, shape_b)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {shape_a} and {shape_b} cannot be broadcast together") from None
    return _ops.Where.apply(a, b, cond)


from . import ops as _ops  # noqa: E402  (ops needs Function and Tensor defined above)
