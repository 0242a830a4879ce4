"""PyTorch's module-level functions: `tg.sum(x, dim=1)`, `tg.max(x, 1)`, `tg.randint(0, 10, (4,))`, ...

A script written for PyTorch calls `torch.exp(x)` as often as `x.exp()`. Most of these functions are
the Tensor method of the same name with the tensor as first argument, so they are generated from one
table (`_FROM_METHODS`) instead of written out one by one; each gets PyTorch's signature (keyword
`dim=`, `keepdim=`) and hands its arguments to the method under the names the method spells.

The rest of this module is what has no Tensor method: `max`/`min` (which also take a second tensor),
`cat`/`stack`/`hstack`/`vstack`, `mm`/`bmm`/`mv`, `inference_mode`, `device`, `cuda`, `backends`,
`Generator` and the creation and random functions PyTorch has (`randint`, `linspace`, `eye`, `empty`,
`*_like`, `multinomial`, `normal`, `bernoulli`, `randperm`). Random functions draw from the global
generator that `manual_seed` seeds, or from the `generator=` given.
"""
from __future__ import annotations

import builtins
import inspect
import string
from types import SimpleNamespace

import numpy as np

from . import ops as _ops
from .device import canonical_device, cuda_runtime, device, emulating_cuda, to_numpy
# Named one by one: `from . import tensor` would give the package's tensor() function, not the module.
from .tensor import Tensor, concat as _concat, full as _full, get_default_dtype, get_rng, manual_seed as _manual_seed
from .tensor import set_grad_enabled, stack as _stack, where as _where, zeros as _zeros

_REQUIRED = inspect.Parameter.empty

# PyTorch's parameters after `input`, as (name, default); a "*" makes the ones after it keyword-only.
_DIM_KEEPDIM = (("dim", None), ("keepdim", False))
_FROM_METHODS = {
    **dict.fromkeys(("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sin", "cos", "tan", "exp2",
                     "expm1", "log2", "log10", "log1p", "rsqrt", "square", "neg", "sign", "floor", "ceil",
                     "round", "trunc", "reciprocal", "erf", "sinh", "cosh", "asin", "acos", "atan", "isnan",
                     "isinf", "isfinite", "logical_not", "clone", "numel", "t", "detach", "is_floating_point"), ()),
    **dict.fromkeys(("add", "sub", "mul", "div", "matmul", "eq", "ne", "lt", "le", "gt", "ge", "maximum",
                     "minimum", "logical_and", "logical_or", "logical_xor", "remainder", "fmod", "dot",
                     "outer", "equal"), (("other", _REQUIRED),)),
    "pow": (("exponent", _REQUIRED),),
    "clamp": (("min", None), ("max", None)),
    "clip": (("min", None), ("max", None)),
    **dict.fromkeys(("sum", "mean", "prod", "argmax", "argmin", "all", "any", "amax", "amin"), _DIM_KEEPDIM),
    "logsumexp": (("dim", _REQUIRED), ("keepdim", False)),
    "var": (("dim", None), "*", ("correction", 1), ("keepdim", False)),
    "std": (("dim", None), "*", ("correction", 1), ("keepdim", False)),
    "softmax": (("dim", _REQUIRED),),
    "log_softmax": (("dim", _REQUIRED),),
    "cumsum": (("dim", _REQUIRED),),
    "reshape": (("shape", _REQUIRED),),
    "flatten": (("start_dim", 0), ("end_dim", -1)),
    "squeeze": (("dim", None),),
    "unsqueeze": (("dim", _REQUIRED),),
    "transpose": (("dim0", _REQUIRED), ("dim1", _REQUIRED)),
    "swapaxes": (("axis0", _REQUIRED), ("axis1", _REQUIRED)),
    "permute": (("dims", _REQUIRED),),
    "broadcast_to": (("size", _REQUIRED),),
    "flip": (("dims", _REQUIRED),),
    "gather": (("dim", _REQUIRED), ("index", _REQUIRED)),
    "scatter": (("dim", _REQUIRED), ("index", _REQUIRED), ("src", None), "*", ("value", None), ("reduce", None)),
    "scatter_add": (("dim", _REQUIRED), ("index", _REQUIRED), ("src", _REQUIRED)),
    "masked_fill": (("mask", _REQUIRED), ("value", _REQUIRED)),
    "chunk": (("chunks", _REQUIRED), ("dim", 0)),
    "split": (("split_size_or_sections", _REQUIRED), ("dim", 0)),
    "topk": (("k", _REQUIRED), ("dim", -1), ("largest", True), ("sorted", True)),
    "sort": (("dim", -1), ("descending", False)),
    "argsort": (("dim", -1), ("descending", False)),
    "tril": (("diagonal", 0),),
    "triu": (("diagonal", 0),),
    **dict.fromkeys(("nonzero", "argwhere", "trace", "ravel"), ()),
    **dict.fromkeys(("floor_divide", "true_divide"), (("other", _REQUIRED),)),
    **dict.fromkeys(("allclose", "isclose"), (("other", _REQUIRED), ("rtol", 1e-05), ("atol", 1e-08),
                                              ("equal_nan", False))),
    "norm": (("p", "fro"), ("dim", None), ("keepdim", False)),
    "median": _DIM_KEEPDIM,
    "cumprod": (("dim", _REQUIRED),),
    "count_nonzero": (("dim", None),),
    "unique": (("sorted", True), ("return_inverse", False), ("return_counts", False), ("dim", None)),
    "diag": (("diagonal", 0),),
    "narrow": (("dim", _REQUIRED), ("start", _REQUIRED), ("length", _REQUIRED)),
    "index_select": (("dim", _REQUIRED), ("index", _REQUIRED)),
    "take_along_dim": (("indices", _REQUIRED), ("dim", None)),
    "roll": (("shifts", _REQUIRED), ("dims", None)),
    "tile": (("dims", _REQUIRED),),
    "movedim": (("source", _REQUIRED), ("destination", _REQUIRED)),
    "unbind": (("dim", 0),),
    "repeat_interleave": (("repeats", _REQUIRED), ("dim", None)),
    "nan_to_num": (("nan", 0.0), ("posinf", None), ("neginf", None)),
    "div": (("other", _REQUIRED), "*", ("rounding_mode", None)),  # replaces the entry above, same position
    **dict.fromkeys(("cummax", "cummin", "logcumsumexp"), (("dim", _REQUIRED),)),
    **dict.fromkeys(("acosh", "asinh", "atanh", "arccosh", "arcsinh", "arctanh"), ()),
    **dict.fromkeys(("copysign", "logaddexp", "bitwise_left_shift", "bitwise_right_shift"), (("other", _REQUIRED),)),
    "lerp": (("end", _REQUIRED), ("weight", _REQUIRED)),
    "diagonal": (("offset", 0), ("dim1", 0), ("dim2", 1)),
    "masked_select": (("mask", _REQUIRED),),
    "unflatten": (("dim", _REQUIRED), ("sizes", _REQUIRED)),
}
# How a Tensor method may spell a PyTorch parameter while tensor.py moves to PyTorch's names.
_SPELLINGS = {"dim": ("dim", "axis"), "keepdim": ("keepdim", "keepdims"), "dims": ("dims", "axes"),
              "size": ("size", "shape")}


# NumPy's spellings, which PyTorch accepts too: torch.sum(x, axis=1, keepdims=True).
_NUMPY_ALIASES = {"axis": "dim", "keepdims": "keepdim"}


def _numpy_aliases(name, kwargs, params):
    for alias, torch_name in _NUMPY_ALIASES.items():
        if alias in kwargs and torch_name in params:
            if torch_name in kwargs:
                raise TypeError(f"{name}(): give {torch_name}= or its alias {alias}=, not both")
            kwargs[torch_name] = kwargs.pop(alias)
    return kwargs


def _check_input(name, value):
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(value).__name__}; "
                        "make one with tinygrad_course.tensor(...)")


def _parameters(method):
    """The method's parameters; None for one without a readable signature (it gets PyTorch's names)."""
    try:
        return inspect.signature(method).parameters
    except (TypeError, ValueError):
        return None


def _method_keywords(method, torch_params):
    """The keyword `method` takes for each PyTorch parameter: the same name, a spelling from _SPELLINGS,
    or else its next unclaimed parameter in order (Tensor.__add__(self, o) takes `other` as `o`);
    None where it has no counterpart."""
    accepted = _parameters(method)
    if accepted is None or any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return {p: p for p in torch_params}
    keyword = {p: next((s for s in _SPELLINGS.get(p, (p,)) if s in accepted), None) for p in torch_params}
    unclaimed = iter([a for a, p in list(accepted.items())[1:]  # [1:]: self
                      if p.kind is p.POSITIONAL_OR_KEYWORD and a not in keyword.values()])
    return {p: keyword[p] or next(unclaimed, None) for p in torch_params}


def _from_method(name, params):
    """torch.<name>(input, ...) as a call of input.<name>(...), with PyTorch's signature."""
    method = getattr(Tensor, name)
    positional = any(p.kind is p.VAR_POSITIONAL  # reshape(*shape), permute(*dims)
                     for p in (_parameters(method) or {}).values())
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = [inspect.Parameter("input", kind)]
    for param in params:
        if param == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            signature.append(inspect.Parameter(param[0], kind, default=param[1]))
    signature = inspect.Signature(signature)
    keyword = _method_keywords(method, list(signature.parameters)[1:])

    def function(*args, **kwargs):
        try:
            bound = signature.bind(*args, **_numpy_aliases(name, kwargs, signature.parameters))
        except TypeError as e:
            raise TypeError(f"{name}(): {e}; the signature is {name}{signature}") from None
        arguments = dict(bound.arguments)
        input = arguments.pop("input")
        _check_input(name, input)
        if positional:
            return getattr(input, name)(*arguments.values())
        for k in arguments:
            if keyword[k] is None:
                raise TypeError(f"{name}(): {k}= is not supported yet; leave it out")
        return getattr(input, name)(**{keyword[k]: v for k, v in arguments.items()})

    function.__name__ = function.__qualname__ = name
    function.__signature__ = signature
    function.__doc__ = f"{name}{signature}: PyTorch's torch.{name}, the same as input.{name}(...)."
    return function


# Only what the Tensor class has: a name without its method is reported by the package's __getattr__.
METHOD_FUNCTIONS = {name: _from_method(name, params) for name, params in _FROM_METHODS.items()
                    if callable(getattr(Tensor, name, None))}
MISSING_METHODS = frozenset(_FROM_METHODS) - frozenset(METHOD_FUNCTIONS)  # PyTorch functions awaiting their method
# (The package exports them; not made globals here, where `all`, `sum` or `round` would hide the builtins.)


# --- functions with more than one form --------------------------------------------------------
def _extremum(name, elementwise):
    def function(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
        _check_input(name, input)
        dim = dim if axis is None else axis  # NumPy's spellings, as in _NUMPY_ALIASES
        keepdim = keepdim if keepdims is None else keepdims
        if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise maximum
            if not hasattr(Tensor, elementwise):
                raise TypeError(f"{name}(input, other) (the elementwise {elementwise}) is not supported yet; "
                                f"use where(input {'>=' if name == 'max' else '<='} other, input, other)")
            return getattr(input, elementwise)(dim)
        if dim is None:
            if keepdim:
                raise TypeError(f"{name}(): keepdim=True needs dim=; give the dim to reduce")
            return getattr(input, name)()
        return getattr(input, name)(dim, keepdim)  # (values, indices), as the Tensor method returns them

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (f"{name}(input) the {name} element; {name}(input, dim, keepdim=False) along dim; "
                        f"{name}(input, other) the elementwise {elementwise}, as in PyTorch.")
    return function


max = _extremum("max", "maximum")
min = _extremum("min", "minimum")


def _tensor_list(name, tensors) -> list:
    try:
        tensors = None if isinstance(tensors, Tensor) else list(tensors)
    except TypeError:  # not iterable
        tensors = None
    if tensors is None or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{name}(): argument 'tensors' must be a list or tuple of Tensors; write {name}([a, b])")
    if not tensors:
        raise ValueError(f"{name}() needs at least one tensor")
    return tensors


def cat(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim (PyTorch's torch.cat; `concat` and `concatenate` are aliases)."""
    return _concat(_tensor_list("cat", tensors), dim if axis is None else axis)


concat = concatenate = cat


def stack(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join equal-shaped tensors along a new dim."""
    return _stack(_tensor_list("stack", tensors), dim if axis is None else axis)


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors), as torch.hstack."""
    tensors = [t.reshape(1) if t.ndim == 0 else t for t in _tensor_list("hstack", tensors)]
    return _concat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0, 0-D and 1-D tensors taken as rows, as torch.vstack."""
    return _concat([t.reshape(1, -1) if t.ndim < 2 else t for t in _tensor_list("vstack", tensors)], 0)


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids from 0-D or 1-D tensors (torch.meshgrid): indexing "ij" gives shape (len0, len1, ...),
    "xy" swaps the first two dims. Without indexing= it warns and uses "ij", as PyTorch does."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings
        warnings.warn("meshgrid: pass indexing='ij' (the default used now) or indexing='xy', as PyTorch will "
                      "require", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = _tensor_list("meshgrid", tensors)
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-D or 1-D tensors, got shape {t.shape}; flatten it first")
        if t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise TypeError(f"meshgrid: all tensors need one dtype and device, got {tensors[0].dtype} on "
                            f"{tensors[0].device} and {t.dtype} on {t.device}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, axis in zip(tensors, axes):
        shape[axis] = t.numel()
    grids = []
    for t, axis in zip(tensors, axes):
        view = [1] * len(tensors)
        view[axis] = -1
        grids.append(t.reshape(*view).expand(*shape))
    return tuple(grids)


def _stat_mean(name, input, dim, correction, keepdim, unbiased):
    _check_input(name, input)
    if unbiased is not None:
        correction = int(builtins.bool(unbiased))
    stat = getattr(input, name.split("_")[0])(dim, keepdims=keepdim, correction=correction)
    return stat, input.mean(dim, keepdims=keepdim)


def std_mean(input, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> tuple:
    """(std, mean) over dim (all elements by default), as torch.std_mean; correction=1 is Bessel's."""
    return _stat_mean("std_mean", input, dim, correction, keepdim, unbiased)


def var_mean(input, dim=None, *, correction=1, keepdim: bool = False, unbiased=None) -> tuple:
    """(var, mean) over dim (all elements by default), as torch.var_mean; correction=1 is Bessel's."""
    return _stat_mean("var_mean", input, dim, correction, keepdim, unbiased)

def mm(input, mat2) -> Tensor:
    """The product of two matrices (2-D only, as torch.mm; matmul broadcasts)."""
    return _checked_matmul("mm", input, mat2, 2)


def bmm(input, mat2) -> Tensor:
    """The batched product of (b, n, m) and (b, m, p) tensors (3-D only, as torch.bmm)."""
    return _checked_matmul("bmm", input, mat2, 3)


def mv(input, vec) -> Tensor:
    """The product of a matrix and a vector (2-D and 1-D only, as torch.mv)."""
    return _checked_matmul("mv", input, vec, 2, 1)


def _checked_matmul(name, a, b, ndim, ndim_b=None):
    _check_input(name, a)
    _check_input(name, b)
    ndim_b = ndim if ndim_b is None else ndim_b
    if a.ndim != ndim or b.ndim != ndim_b:
        raise ValueError(f"{name}: the operands must be {ndim}-D and {ndim_b}-D, got shapes {a.shape} and "
                         f"{b.shape}; use matmul for other shapes")
    if ndim == 3 and a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes differ, shapes {a.shape} and {b.shape}")
    return a.matmul(b)


# --- einsum ------------------------------------------------------------------------------------
_LABELS = string.ascii_uppercase + string.ascii_lowercase  # PyTorch's (and NumPy's) label order


def einsum(equation: str, *operands) -> Tensor:
    """torch.einsum: einsum("ij,jk->ik", a, b), or the operands as one list, einsum("ij,jk", [a, b]).

    As PyTorch: labels a-z and A-Z; without "->" the output holds the labels that occur once, in
    alphabetical order (after the "..." dims); "..." stands for the leading dims and broadcasts, as do
    size-1 dims against a label's size elsewhere; a label repeated in one operand takes its diagonal
    ("ii->i", "ii->" the trace). Operands share one dtype and device. Differentiable in each operand.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string such as 'ij,jk->ik', not {type(equation).__name__}")
    if not operands:
        raise ValueError("einsum(): give at least one operand: einsum('ij->ji', a)")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, not {type(t).__name__}; "
                            "make one with tinygrad_course.tensor(...)")
        if t.dtype != operands[0].dtype:
            raise TypeError(f"einsum(): the operands' dtypes differ ({operands[0].dtype} and {t.dtype} of operand "
                            f"{i}); convert them with .float() or .double()")
        if t.device != operands[0].device:
            raise RuntimeError(f"einsum(): the operands are on different devices ({operands[0].device} and "
                               f"{t.device} of operand {i}); move them with .to(device) first")
    inputs, output, sizes = _einsum_labels(equation, [t.shape for t in operands])
    return _ops.Einsum.apply(*operands, inputs=inputs, output=output, sizes=sizes)


def _einsum_term(equation, term, where):
    """A term's labels with "..." as one "." (and checks that it is made of labels)."""
    body = term.replace("...", ".", 1)
    if not all(c in _LABELS or c == "." for c in body) or body.count(".") > 1 or "..." in term.replace("...", "", 1):
        raise ValueError(f"einsum(): {where} {term!r} of {equation!r} may hold only the letters a-z, A-Z and "
                         "one '...'")
    return body


def _einsum_labels(equation, shapes):
    """The equation made explicit: (input label strings, output label string, size of each label), with
    each "..." replaced by unused labels (right-aligned across operands, as broadcasting aligns dims)."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum(): {equation!r} has {len(terms)} operand(s) but {len(shapes)} were given")
    terms = [_einsum_term(equation, t, "operand") for t in terms]
    ellipsis_dims = []
    for i, (t, shape) in enumerate(zip(terms, shapes)):
        n = len(t) - ("." in t)
        if len(shape) < n or ("." not in t and len(shape) != n):
            raise ValueError(f"einsum(): operand {i} has {len(shape)} dims {tuple(shape)} but its subscripts "
                             f"{t.replace('.', '...')!r} name {n}")
        ellipsis_dims.append(len(shape) - n)
    used = set(lhs) | set(rhs)
    spare = [c for c in _LABELS if c not in used]
    most = builtins.max(ellipsis_dims)  # (this module's max is torch.max)
    if most > len(spare):
        raise ValueError(f"einsum(): too many dims for the 52 labels in {equation!r}")
    fill = "".join(spare[:most])
    terms = [t.replace(".", fill[most - k:]) for t, k in zip(terms, ellipsis_dims)]
    sizes = {}
    for i, (t, shape) in enumerate(zip(terms, shapes)):
        own = {}
        for c, n in zip(t, shape):
            if own.setdefault(c, n) != n:
                raise ValueError(f"einsum(): label {c!r} is repeated in operand {i} over dims of different sizes "
                                 f"{own[c]} and {n} (shape {tuple(shape)})")
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum(): label {c!r} has sizes {sizes[c]} and {n}, which do not broadcast "
                                 f"(operand {i}, shape {tuple(shape)})")
            sizes[c] = builtins.max(sizes.get(c, n), n) if n != 0 and sizes.get(c) != 0 else 0
    if arrow:
        out = _einsum_term(equation, rhs, "output")
        if "." in out and not ("." in lhs.replace("...", ".")):
            raise ValueError(f"einsum(): the output of {equation!r} has '...' but no operand has")
        out = out.replace(".", fill)
        for c in out:
            if out.count(c) > 1:
                raise ValueError(f"einsum(): label {c!r} occurs twice in the output of {equation!r}")
            if c not in sizes:
                raise ValueError(f"einsum(): output label {c!r} of {equation!r} is in no operand")
    else:
        counts = "".join(terms)
        out = fill + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in fill))
    return terms, out, sizes


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor, sharing memory where it can (a Tensor or a NumPy array of that dtype, on "cpu")."""
    if isinstance(data, Tensor):
        return data.to(device, dtype)
    return Tensor(data, dtype=dtype, device=device or "cpu")


def where(condition, input=None, other=None) -> Tensor:
    """Elementwise `input if condition else other` (PyTorch's argument names)."""
    if input is None and other is None:
        raise TypeError("where(condition) alone (the indices of true elements) is not supported; "
                        "give where(condition, input, other)")
    return _where(condition, input, other)


def inference_mode(mode=True):
    """PyTorch's inference_mode: here no_grad() (graph recording off); a context manager and decorator,
    with or without the parentheses."""
    if callable(mode):  # @inference_mode on a function
        return set_grad_enabled(False)(mode)
    return set_grad_enabled(not mode)


# --- devices ----------------------------------------------------------------------------------
class _Cuda:
    """torch.cuda's questions: is the "cuda" device usable here?"""

    @staticmethod
    def is_available() -> bool:
        """True when device "cuda" works: CuPy and a GPU are present, or TINYGRAD_COURSE_CUDA_EMULATE is set."""
        if emulating_cuda():
            return True
        from .backend.cuda import CudaUnavailableError, cuda_runtime  # imports CuPy: only when asked
        try:
            cuda_runtime()
        except CudaUnavailableError:
            return False
        return True

    @classmethod
    def device_count(cls) -> int:
        return 1 if cls.is_available() else 0  # "cuda" is one GPU

    @staticmethod
    def current_device() -> int:
        cuda_runtime()  # raises, saying why, where "cuda" cannot be used
        return 0

    @staticmethod
    def synchronize(device=None) -> None:
        """Wait for the GPU's queued work (before reading a clock); nothing to wait for under emulation."""
        runtime = cuda_runtime()
        if not emulating_cuda():
            runtime.xp.cuda.Device().synchronize()

    @staticmethod
    def manual_seed(seed: int) -> None:
        """One generator serves every device here: this seeds it, as manual_seed does."""
        _manual_seed(seed)

    manual_seed_all = manual_seed

    def __getattr__(self, name):
        raise AttributeError(f"tinygrad_course.cuda has no {name!r}: it answers is_available, device_count, "
                             "current_device, synchronize, manual_seed and manual_seed_all"
                             + ("; there is no mixed precision: leave autocast and GradScaler out" if name == "amp"
                                else ""))


cuda = _Cuda()

# torch.backends as scripts use it: cuDNN's switches are kept and change nothing (there is no cuDNN),
# and there is no Apple GPU device ("mps").
backends = SimpleNamespace(
    cudnn=SimpleNamespace(enabled=True, benchmark=False, deterministic=False, is_available=lambda: False),
    mps=SimpleNamespace(is_available=lambda: False, is_built=lambda: False),
)

# torch.accelerator (newer scripts ask it instead of torch.cuda): "cuda" when usable, else None.
accelerator = SimpleNamespace(
    is_available=cuda.is_available, device_count=cuda.device_count,
    current_accelerator=lambda check_available=False: device("cuda") if cuda.is_available() else None,
)


# --- random generators ----------------------------------------------------------------------
class Generator:
    """A random generator of its own, for the `generator=` argument: g = Generator().manual_seed(0)."""

    def __init__(self, device="cpu"):
        self.device = canonical_device(device)
        self._seed = 0
        self._rng = np.random.default_rng(0)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = _seed_int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, new_state: dict) -> "Generator":
        _set_state(self._rng, new_state, "Generator.set_state")
        return self


class _DefaultGenerator(Generator):
    """torch.default_generator: the global generator (rand, randn, initialisers, dropout, shuffling)."""

    def __init__(self):
        self.device, self._seed = canonical_device("cpu"), 0

    _rng = property(lambda self: get_rng())  # looked up at each use: manual_seed replaces it

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = _seed_int(seed)
        _manual_seed(self._seed)
        return self


default_generator = _DefaultGenerator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (rand/randn, initialisers, dropout, shuffling); returns it, as torch does."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def _seed_int(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
    return int(seed)


def get_rng_state() -> dict:
    """The global generator's state, for set_rng_state (a dict, which save() can store; torch's is a tensor)."""
    return get_rng().bit_generator.state


def set_rng_state(new_state: dict) -> None:
    _set_state(get_rng(), new_state, "set_rng_state")


def _set_state(rng, new_state, name):
    try:
        rng.bit_generator.state = new_state
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{name}: not a state from get_rng_state() or Generator.get_state() ({e!r})") from None


def _rng_of(generator) -> np.random.Generator:
    if generator is None:
        return get_rng()  # looked up at each call: manual_seed replaces it
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinygrad_course.Generator, got {type(generator).__name__}")
    return generator._rng


def _size(name, size, what="size") -> tuple:
    """A size given as ints or as one tuple/list, as PyTorch takes both."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in size):
        raise ValueError(f"{name}: {what} must be non-negative ints, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _dtype(dtype):
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def _float_dtype(name, dtype):
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _new(values, dtype, device, requires_grad):
    return Tensor(np.asarray(values).astype(dtype, copy=False), requires_grad=requires_grad, device=device)


# --- creation ---------------------------------------------------------------------------------
def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A new tensor of `size`; unlike PyTorch's, its values are zeros, never leftovers."""
    return _zeros(_size("empty", size), dtype=dtype, device=device, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """The identity matrix (n x m, m defaults to n)."""
    n, m = _size("eye", (n, n if m is None else m), "n and m")
    return _new(np.eye(n, m), _dtype(dtype), device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    (steps,) = _size("linspace", (steps,), "steps")
    dtype = _dtype(dtype)
    if dtype.kind == "b":
        raise TypeError("linspace: dtype bool is not supported (as in PyTorch); use a float or integer dtype")
    values = np.linspace(start, end, steps)
    if dtype.kind in "iu":
        values = np.trunc(values)  # PyTorch rounds toward zero for integer dtypes
    return _new(values, dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    _check_input("full_like", input)
    return _full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros shaped like `input` (see empty)."""
    return full_like(input, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    _check_input("rand_like", input)
    dtype = _float_dtype("rand_like", dtype or input.dtype)
    return _new(_rng_of(generator).random(input.shape), dtype, device or input.device, requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    _check_input("randn_like", input)
    dtype = _float_dtype("randn_like", dtype or input.dtype)
    return _new(_rng_of(generator).standard_normal(input.shape), dtype, device or input.device, requires_grad)


# --- random -----------------------------------------------------------------------------------
def randint(*args, size=None, low=None, high=None, generator=None, dtype=None, device="cpu",
            requires_grad=False) -> Tensor:
    """Uniform integers in [low, high): randint(high, size) or randint(low, high, size); int64 by default."""
    if len(args) > 3:
        raise TypeError(f"randint() takes at most 3 positional arguments (low, high, size), got {len(args)}")
    # PyTorch's two forms: randint(high, size) and randint(low, high, size), positional or by keyword.
    names = {0: (), 1: ("high",) if high is None else ("low",), 2: ("low", "high") if size is not None
             else ("high", "size"), 3: ("low", "high", "size")}[len(args)]
    given = {"low": low, "high": high, "size": size}
    for name, value in zip(names, args):
        if given[name] is not None:
            raise TypeError(f"randint() got {name} both by position and as {name}=")
        given[name] = value
    low, high, size = given["low"], given["high"], given["size"]
    low = 0 if low is None else low
    if high is None or size is None:
        raise TypeError("randint() needs high and size: randint(high, size) or randint(low, high, size)")
    return _randint("randint", low, high, _size("randint", (size,) if isinstance(size, int) else size),
                    generator, np.int64 if dtype is None else dtype, device, requires_grad)


def _randint(name, low, high, size, generator, dtype, device, requires_grad):
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise TypeError(f"{name}: low and high must be ints, got {low!r} and {high!r}")
    if low >= high:
        raise ValueError(f"{name}: low must be less than high, got low={low} >= high={high}")
    return _new(_rng_of(generator).integers(low, high, size), np.dtype(dtype), device, requires_grad)


def randint_like(input, low_or_high, high=None, *, dtype=None, device=None, generator=None) -> Tensor:
    """randint_like(input, high) or randint_like(input, low, high): integers shaped like input, of its dtype."""
    _check_input("randint_like", input)
    low, high = (0, low_or_high) if high is None else (low_or_high, high)
    return _randint("randint_like", low, high, input.shape, generator, dtype or input.dtype,
                    device or input.device, False)


def randperm(n: int, *, generator=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1 (int64 by default)."""
    (n,) = _size("randperm", (n,), "n")
    return _new(_rng_of(generator).permutation(n), np.dtype(np.int64 if dtype is None else dtype), device,
                requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device="cpu",
           requires_grad=False) -> Tensor:
    """Normal samples: normal(mean, std, size) with numbers, or with tensor mean and/or std (broadcast).

    Not differentiable in mean and std (PyTorch's gradients for them are zero).
    """
    rng = _rng_of(generator)
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal(mean, std) with number mean and std needs size=; give normal(mean, std, size)")
        values = rng.normal(mean, std, _size("normal", (size,) if isinstance(size, int) else size))
        return _new(values, _float_dtype("normal", dtype), device, requires_grad)
    if size is not None:
        raise TypeError("normal(): size= is for number mean and std; with a tensor the shape is its shape")
    ref = tensors[0]
    m, s = (to_numpy(t._data) if isinstance(t, Tensor) else t for t in (mean, std))
    if np.any(np.asarray(s) < 0):
        raise ValueError("normal(): std must be non-negative")
    shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    return _new(m + s * rng.standard_normal(shape), _float_dtype("normal", dtype or ref.dtype), ref.device,
                requires_grad)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with the probability in each element of `input` (or with `p` everywhere), else 0; input's dtype."""
    _check_input("bernoulli", input)
    dtype = _float_dtype("bernoulli", input.dtype)
    probs = to_numpy(input._data) if p is None else np.full(input.shape, p, dtype=np.float64)
    if not np.all((probs >= 0) & (probs <= 1)):  # NaN fails too
        raise ValueError("bernoulli: probabilities must be in [0, 1]")
    return _new(_rng_of(generator).random(input.shape) < probs, dtype, input.device, False)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices drawn by the non-negative weights in each row of `input` (1-D or 2-D); int64.

    Without replacement an index is drawn at most once; as in PyTorch, zero-weight indices come
    last, after every positive-weight one.
    """
    _check_input("multinomial", input)
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D, got shape {input.shape}")
    weights = np.atleast_2d(to_numpy(input._data)).astype(np.float64)
    (num_samples,) = _size("multinomial", (num_samples,), "num_samples")
    if num_samples == 0:
        raise ValueError("multinomial: num_samples must be positive")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("multinomial: weights must be finite and non-negative (no inf, nan or negative values)")
    if np.any(weights.sum(axis=1) == 0):
        raise ValueError("multinomial: every row of weights needs a positive sum")
    if not replacement and num_samples > weights.shape[1]:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                         f"{weights.shape[1]} categories; pass replacement=True")
    rng = _rng_of(generator)
    if replacement:  # inverse CDF of each row
        cdf = np.cumsum(weights, axis=1)
        u = rng.random((len(weights), num_samples)) * cdf[:, -1:]
        picks = np.stack([np.minimum(np.searchsorted(c, row, side="right"), len(c) - 1) for c, row in zip(cdf, u)])
    else:  # the smallest exponential(1) / weight keys: a weighted draw without replacement
        with np.errstate(divide="ignore", invalid="ignore"):  # weight 0: key inf, drawn last
            keys = rng.exponential(size=weights.shape) / weights
        picks = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    picks = picks if input.ndim == 2 else picks[0]
    return Tensor(picks.astype(np.int64), device=input.device)
