"""Layers and loss modules: a Module around each function of `nn.functional`.

The modules own the state (Parameters, running statistics, the training flag)
and PyTorch's default initialisation; the arithmetic lives in `functional`.
"""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from ..tensor import Tensor, concat, get_default_dtype, get_rng, no_grad, stack, where
from . import functional as F
from . import init
from .functional import _single
from .module import Module, ModuleList, Parameter

__all__ = [
    "Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "Upsample", "MaxPool1d", "AvgPool1d", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "BatchNorm1d", "BatchNorm2d", "SyncBatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm2d", "Dropout",
    "Dropout2d", "Embedding", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "MultiheadAttention", "TransformerEncoderLayer",
    "TransformerEncoder",
    "ReLU", "LeakyReLU", "PReLU", "GELU", "SiLU", "ReLU6", "ELU", "Softplus", "Hardtanh", "LogSigmoid", "Tanh",
    "Mish", "Hardswish", "Hardsigmoid", "SELU", "CELU", "Softsign", "Tanhshrink", "Threshold", "Hardshrink",
    "Softshrink", "GLU",
    "Sigmoid", "Softmax", "LogSoftmax", "Softmin", "CosineSimilarity", "Flatten", "Unflatten", "Identity",
    "ConstantPad1d", "ConstantPad2d", "ZeroPad2d", "PixelShuffle", "PixelUnshuffle",
    "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
    "KLDivLoss", "DiceLoss", "JaccardLoss", "FocalLoss",
]


def _dtype(dtype) -> np.dtype:
    if dtype is None:
        return get_default_dtype()
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in ("float32", "float64"):
        raise TypeError(f"dtype must be float32 or float64 for layer parameters, got {dtype!r}")
    return resolved


def _place(module: Module, device) -> None:
    """torch's device= factory argument: build (and initialise) on the CPU, then move, so a seed gives
    the same weights on every device."""
    if device is not None:
        module.to(device=device)


def _empty_parameter(shape, dtype) -> Parameter:
    """A zero Parameter of `shape`, to be filled by an initialiser."""
    return Parameter(np.zeros(shape, dtype=_dtype(dtype)))


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --- linear and convolution ---------------------------------------------------------------
def _default_init(weight, bias) -> None:
    """PyTorch's default for Linear and Conv2d: kaiming_uniform_(a=sqrt(5)) for the weight,
    U(+-1/sqrt(fan_in)) for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


def _conv_extra_repr(layer, **defaults) -> str:
    """Channels, kernel and stride, then every option in `defaults` that differs from its default."""
    s = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    for name, default in defaults.items():
        value = getattr(layer, name)
        if value != default:
            s += f", {name}={value}"  # strings unquoted, as PyTorch prints padding=same
    if layer.groups != 1:
        s += f", groups={layer.groups}"
    if layer.bias is None:
        s += ", bias=False"
    return s


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.weight = _empty_parameter((out_features, in_features), dtype)
        self.register_parameter("bias", _empty_parameter((out_features,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)), for W and b."""
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D cross-correlation over NCHW input; padding may be an int, a pair, "valid" or "same" (stride 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        _unsupported("Conv2d", padding_mode=(padding_mode, "zeros"))
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding string must be 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("Conv2d: padding='same' is only supported with stride 1")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
        self.weight = _empty_parameter((out_channels, in_channels // groups) + self.kernel_size, dtype)
        self.register_parameter("bias", _empty_parameter((out_channels,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        """Same rule as Linear, with fan_in = in_channels/groups * kh * kw."""
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return _conv_extra_repr(self, padding=(0, 0), dilation=(1, 1))


class Conv1d(Module):
    """1-D cross-correlation over (N, C, L) input (sequences, signals), weight (out, in/groups, k);
    computed as a Conv2d of height one. padding may be an int, "valid" or "same" (stride 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        _unsupported("Conv1d", padding_mode=(padding_mode, "zeros"))
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.kernel_size = (_single(kernel_size, "kernel_size"),)
        self.stride, self.dilation = (_single(stride, "stride"),), (_single(dilation, "dilation"),)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv1d: padding string must be 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError("Conv1d: padding='same' is only supported with stride 1")
            self.padding = padding
        else:
            self.padding = (_single(padding, "padding"),)
        self.weight = _empty_parameter((out_channels, in_channels // groups) + self.kernel_size, dtype)
        self.register_parameter("bias", _empty_parameter((out_channels,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        """As Conv2d, with fan_in = in_channels/groups * k."""
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3):
            raise ValueError(f"Conv1d: expected input (N, C, L) or (C, L), got shape {x.shape}")
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(x, self.weight, self.bias, self.stride[0], padding, self.dilation[0], self.groups)

    def extra_repr(self) -> str:
        return _conv_extra_repr(self, padding=(0,), dilation=(1,))


class MaxPool1d(Module):
    """Max over windows along the last axis of (N, C, L) input (see F.max_pool1d); arguments in PyTorch's order."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.padding = _single(kernel_size, "kernel_size"), _single(padding, "padding")
        self.stride = _single(stride, "stride") if stride is not None else self.kernel_size
        self.dilation, self.return_indices, self.ceil_mode = _single(dilation, "dilation"), return_indices, ceil_mode

    def forward(self, x: Tensor):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool1d(Module):
    """Mean over windows along the last axis of (N, C, L) input (see F.avg_pool1d); arguments in PyTorch's order."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        self.kernel_size, self.padding = _single(kernel_size, "kernel_size"), _single(padding, "padding")
        self.stride = _single(stride, "stride") if stride is not None else self.kernel_size
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size=({self.kernel_size},), stride=({self.stride},), padding=({self.padding},)"


class ConvTranspose2d(Module):
    """Transposed 2-D convolution (a learnable upsampling), weight (in_channels, out_channels/groups, kh, kw).

    Output size per axis: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__()
        _unsupported("ConvTranspose2d", padding_mode=(padding_mode, "zeros"))
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        self.output_padding, self.dilation = _pair(output_padding, "output_padding"), _pair(dilation, "dilation")
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than the "
                             f"stride {self.stride} or the dilation {self.dilation} in each dimension")
        self.weight = _empty_parameter((in_channels, out_channels // groups) + self.kernel_size, dtype)
        self.register_parameter("bias", _empty_parameter((out_channels,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        """PyTorch's default: as Conv2d, with fan_in = weight.shape[1] * kh * kw = out_channels/groups * kh * kw."""
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self) -> str:
        return _conv_extra_repr(self, padding=(0, 0), output_padding=(0, 0), dilation=(1, 1))


class Embedding(Module):
    """A lookup table: integer indices of any shape -> rows of weight (num_embeddings, embedding_dim),
    initialised N(0, 1) as in PyTorch. The row at padding_idx starts at zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        _unsupported("Embedding", max_norm=(max_norm, None), scale_grad_by_freq=(scale_grad_by_freq, False),
                     sparse=(sparse, False))
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be within [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = _empty_parameter((num_embeddings, embedding_dim), dtype)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: weight of shape {tuple(_weight.shape)} given for "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)
        _place(self, device)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None) -> "Embedding":
        """An Embedding whose table is `embeddings` (2-D; shared, not copied), frozen unless freeze=False."""
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be a 2-D Tensor (num_embeddings, dim)")
        return cls(*embeddings.shape, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, indices: Tensor) -> Tensor:
        if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
            what = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
            raise TypeError(f"Embedding: indices must be an integer Tensor (e.g. dtype int64), got {what}")
        if indices.numel() and not (0 <= int(indices._data.min()) and int(indices._data.max()) < self.num_embeddings):
            raise IndexError(f"Embedding: indices must be in [0, {self.num_embeddings}), got values from "
                             f"{int(indices._data.min())} to {int(indices._data.max())}")
        out = self.weight[indices]
        if self.padding_idx is not None:  # the padding row's value, with its gradient held back
            out = where((indices._data == self.padding_idx)[..., None], out.detach(), out)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


# One time step of each recurrent cell, shared by the sequence layers (RNN, LSTM, GRU) and the cells
# (RNNCell, LSTMCell, GRUCell): x (N, H_in), h and c (N, H); weights as PyTorch lays them out.
def _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """h' = tanh (or relu) of (x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    pre = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _lstm_step(x, state, w_ih, w_hh, b_ih, b_hh):
    """Gates i, f, g, o (PyTorch's order): c' = f c + i g, h' = o tanh(c'); returns (h', c')."""
    h, c = state
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    i, f, g, o = (gates[:, k * n:(k + 1) * n] for k in range(4))
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """Gates r, z, n: n = tanh(x W_in + b_in + r (h W_hn + b_hn)), h' = (1 - z) n + z h."""
    gi, gh = F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    r = (gi[:, :n] + gh[:, :n]).sigmoid()
    z = (gi[:, n:2 * n] + gh[:, n:2 * n]).sigmoid()
    candidate = (gi[:, 2 * n:] + r * gh[:, 2 * n:]).tanh()
    return (1.0 - z) * candidate + z * h


class _RNNBase(Module):
    """Recurrent layers as PyTorch lays them out: per layer and direction weight_ih_l{k}[_reverse]
    (gates * hidden, input), weight_hh_l{k} (gates * hidden, hidden) and two biases, all U(+-1/sqrt(hidden)).
    Input (L, N, H_in), or (N, L, H_in) with batch_first, or unbatched (L, H_in); returns the top layer's
    outputs for every step and the last hidden state of every layer (and cell state for LSTM)."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None):
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.num_layers = _positive_int(num_layers, "num_layers")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ["", "_reverse"][:directions]:
                rows = self._gates * hidden_size
                self.register_parameter(f"weight_ih_l{layer}{suffix}", _empty_parameter((rows, layer_input), dtype))
                self.register_parameter(f"weight_hh_l{layer}{suffix}", _empty_parameter((rows, hidden_size), dtype))
                self.register_parameter(f"bias_ih_l{layer}{suffix}", _empty_parameter((rows,), dtype) if bias else None)
                self.register_parameter(f"bias_hh_l{layer}{suffix}", _empty_parameter((rows,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _cell(self, x: Tensor, state, w_ih, w_hh, b_ih, b_hh):  # pragma: no cover - interface
        raise NotImplementedError

    def _initial_state(self, x: Tensor, hx, batch: int):
        shape = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
        if hx is None:
            return Tensor(np.zeros(shape, dtype=x.dtype), device=x.device)
        if hx.shape != shape:
            raise ValueError(f"{type(self).__name__}: initial state of shape {hx.shape}, expected {shape}")
        return hx

    def forward(self, x: Tensor, hx=None):
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input (L, N, {self.input_size}) (or batch_first, or unbatched "
                             f"(L, {self.input_size})), got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
            hx = None if hx is None else (tuple(h.reshape(h.shape[0], 1, h.shape[1]) for h in hx)
                                          if isinstance(hx, tuple) else hx.reshape(hx.shape[0], 1, hx.shape[1]))
        elif self.batch_first:
            x = x.transpose(0, 1)
        states = self._initial_states(x, hx, x.shape[1])
        directions = 2 if self.bidirectional else 1
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(["", "_reverse"][:directions]):
                weights = [getattr(self, f"{kind}_l{layer}{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                                                 "bias_hh")]
                state = self._state_at(states, layer * directions + direction)
                steps = range(x.shape[0]) if direction == 0 else reversed(range(x.shape[0]))
                out = [None] * x.shape[0]
                for t in steps:
                    state = self._cell(x[t], state, *weights)
                    out[t] = state[0] if isinstance(state, tuple) else state
                outputs.append(stack(out, 0))
                finals.append(state)
            x = outputs[0] if directions == 1 else concat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        final = self._stack_states(finals)
        if unbatched:
            x = x.reshape(x.shape[0], x.shape[2])
            final = (tuple(h.reshape(h.shape[0], h.shape[2]) for h in final) if isinstance(final, tuple)
                     else final.reshape(final.shape[0], final.shape[2]))
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, final

    def _initial_states(self, x, hx, batch):
        return self._initial_state(x, hx, batch)

    def _state_at(self, states, i):
        return states[i]

    def _stack_states(self, finals):
        return stack(finals, 0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class RNN(_RNNBase):
    """Elman RNN: h' = tanh (or relu) of (x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype)

    def _cell(self, x, h, w_ih, w_hh, b_ih, b_hh):
        return _rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, self.nonlinearity)


class LSTM(_RNNBase):
    """Long short-term memory: input, forget, cell and output gates (PyTorch's order i, f, g, o);
    c' = f c + i g, h' = o tanh(c'). hx and the returned state are (h, c)."""

    _gates = 4

    def _initial_states(self, x, hx, batch):
        h0, c0 = (None, None) if hx is None else hx
        return self._initial_state(x, h0, batch), self._initial_state(x, c0, batch)

    def _state_at(self, states, i):
        return states[0][i], states[1][i]

    def _stack_states(self, finals):
        return stack([h for h, _ in finals], 0), stack([c for _, c in finals], 0)

    def _cell(self, x, state, w_ih, w_hh, b_ih, b_hh):
        return _lstm_step(x, state, w_ih, w_hh, b_ih, b_hh)


class GRU(_RNNBase):
    """Gated recurrent unit (PyTorch's gates r, z, n): n = tanh(x W_in + b_in + r (h W_hn + b_hn)),
    h' = (1 - z) n + z h."""

    _gates = 3

    def _cell(self, x, h, w_ih, w_hh, b_ih, b_hh):
        return _gru_step(x, h, w_ih, w_hh, b_ih, b_hh)


class _RNNCellBase(Module):
    """One step of a recurrent layer, PyTorch's layout: weight_ih (gates * hidden, input), weight_hh
    (gates * hidden, hidden), bias_ih and bias_hh (gates * hidden), all U(+-1/sqrt(hidden)).
    forward(input, hx=None): input (N, H_in) or unbatched (H_in,); hx zeros when None."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.bias = bias
        rows = self._gates * hidden_size
        self.weight_ih = _empty_parameter((rows, input_size), dtype)
        self.weight_hh = _empty_parameter((rows, hidden_size), dtype)
        self.register_parameter("bias_ih", _empty_parameter((rows,), dtype) if bias else None)
        self.register_parameter("bias_hh", _empty_parameter((rows,), dtype) if bias else None)
        self.reset_parameters()
        _place(self, device)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check_input(self, x: Tensor) -> bool:
        """True when x is unbatched (H_in,); raises for any other shape than (N, H_in)."""
        if not isinstance(x, Tensor) or x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (N, {self.input_size}) or unbatched "
                             f"({self.input_size},), got {getattr(x, 'shape', type(x).__name__)}")
        return x.ndim == 1

    def _state(self, x: Tensor, h, unbatched: bool, what: str = "hx") -> Tensor:
        """The state as (N, H): zeros when None, checked against the input's batch."""
        shape = (x.shape[0], self.hidden_size)
        if h is None:
            return Tensor(np.zeros(shape, dtype=x.dtype), device=x.device)
        expected = (self.hidden_size,) if unbatched else shape
        if tuple(h.shape) != expected:
            raise ValueError(f"{type(self).__name__}: {what} of shape {h.shape}, expected {expected}")
        return h.reshape(shape)

    def _weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(_RNNCellBase):
    """An Elman RNN step: h' = tanh (or relu) of (x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx=None) -> Tensor:
        unbatched = self._check_input(input)
        x = input.reshape(1, -1) if unbatched else input
        h = _rnn_step(x, self._state(x, hx, unbatched), *self._weights(), self.nonlinearity)
        return h.reshape(-1) if unbatched else h


class LSTMCell(_RNNCellBase):
    """An LSTM step (gates i, f, g, o); hx is (h, c) or None, and it returns (h', c')."""

    _gates = 4

    def forward(self, input: Tensor, hx=None):
        unbatched = self._check_input(input)
        x = input.reshape(1, -1) if unbatched else input
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a pair (h, c) of tensors, or None for zeros")
        h, c = (None, None) if hx is None else hx
        h, c = _lstm_step(x, (self._state(x, h, unbatched, "h"), self._state(x, c, unbatched, "c")),
                          *self._weights())
        return (h.reshape(-1), c.reshape(-1)) if unbatched else (h, c)


class GRUCell(_RNNCellBase):
    """A GRU step (gates r, z, n): h' = (1 - z) n + z h."""

    _gates = 3

    def forward(self, input: Tensor, hx=None) -> Tensor:
        unbatched = self._check_input(input)
        x = input.reshape(1, -1) if unbatched else input
        h = _gru_step(x, self._state(x, hx, unbatched), *self._weights())
        return h.reshape(-1) if unbatched else h


def _additive(mask: Tensor, like: Tensor) -> Tensor:
    """A bool "masked out" mask as an additive one of like's dtype: -inf where True, 0 elsewhere."""
    xp = mask._xp
    return Tensor._wrap(xp.where(mask._data, -math.inf, 0.0).astype(like.dtype), like.device)


class MultiheadAttention(Module):
    """Scaled dot-product attention with num_heads heads, PyTorch's layout: in_proj_weight (3E, E) for
    query, key and value, out_proj a Linear. Input (L, N, E), (N, L, E) with batch_first, or unbatched
    (L, E). Masks as in PyTorch: a bool attn_mask (L, S) or (N * heads, L, S) is True where attention is
    not allowed (a float one is added to the scores), key_padding_mask (N, S) is True at padding.
    Returns the output and, with need_weights, the attention weights (averaged over heads by default)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        self.embed_dim = _positive_int(embed_dim, "embed_dim")
        self.num_heads = _positive_int(num_heads, "num_heads")
        _unsupported("MultiheadAttention", add_bias_kv=(add_bias_kv, False), add_zero_attn=(add_zero_attn, False),
                     kdim=(kdim if kdim != embed_dim else None, None), vdim=(vdim if vdim != embed_dim else None, None))
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: num_heads={num_heads} must divide embed_dim={embed_dim}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.dropout, self.batch_first, self.head_dim = dropout, batch_first, embed_dim // num_heads
        self.in_proj_weight = _empty_parameter((3 * embed_dim, embed_dim), dtype)
        self.register_parameter("in_proj_bias", _empty_parameter((3 * embed_dim,), dtype) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)  # PyTorch's choice; the biases start at zero
        if bias:
            init.zeros_(self.out_proj.bias)
        _place(self, device)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal is only a hint; pass the causal attn_mask as well")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.reshape(t.shape[0], 1, t.shape[1]) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.reshape(1, -1)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if query.ndim != 3 or query.shape[2] != self.embed_dim or key.shape != value.shape:
            raise ValueError(f"MultiheadAttention: expected query (L, N, {self.embed_dim}) and key, value of one "
                             f"shape (S, N, {self.embed_dim}), got {query.shape}, {key.shape}, {value.shape}")
        (length, batch, e), source, heads, d = query.shape, key.shape[0], self.num_heads, self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias

        def project(x, i, rows):  # (rows, N, E) -> (N * heads, rows, head_dim)
            part = F.linear(x, w[i * e:(i + 1) * e], None if b is None else b[i * e:(i + 1) * e])
            return part.reshape(rows, batch * heads, d).transpose(0, 1)

        q, k, v = (t.reshape(batch, heads, t.shape[1], d) for t in
                   (project(query, 0, length), project(key, 1, source), project(value, 2, source)))
        mask = None  # additive, (N, heads, L, S) or broadcasting to it; PyTorch's True here means "masked out"
        if attn_mask is not None:
            m = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(batch, heads, length, source)
            mask = _additive(m, q) if m.dtype == bool else m
        if key_padding_mask is not None:
            p = key_padding_mask.reshape(batch, 1, 1, source)
            p = _additive(p, q) if p.dtype == bool else p
            mask = p if mask is None else mask + p
        out, weights = F._attention(q, k, v, mask, self.dropout if self.training else 0.0,
                                    name="MultiheadAttention")  # (N, heads, L, d), (N, heads, L, S)
        out = out.reshape(batch * heads, length, d).transpose(0, 1).reshape(length, batch, e)
        out = self.out_proj(out)
        if unbatched:
            out = out.reshape(length, e)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights.reshape(weights.shape[1:]) if unbatched else weights)


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout and a residual connection, and
    LayerNorm after each (or before, norm_first=True), as PyTorch's (same submodule names)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if activation not in ("relu", "gelu") and not callable(activation):
            raise ValueError(f"activation must be 'relu', 'gelu' or a function, got {activation!r}")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        self.activation = {"relu": F.relu, "gelu": F.gelu}.get(activation, activation)
        _place(self, device)

    def _attend(self, x, mask, padding):
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=padding, need_weights=False)[0])

    def _feed_forward(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask=None, src_key_padding_mask=None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._attend(self.norm1(x), src_mask, src_key_padding_mask)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, src_mask, src_key_padding_mask))
        return self.norm2(x + self._feed_forward(x))


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer (independent weights), then an optional final norm."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(_positive_int(num_layers, "num_layers"))])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src: Tensor, mask=None, src_key_padding_mask=None, is_causal=None) -> Tensor:
        for layer in self.layers:
            src = layer(src, src_mask=mask, src_key_padding_mask=src_key_padding_mask)
        return self.norm(src) if self.norm is not None else src


class Upsample(Module):
    """Resize NCHW input to `size` or by `scale_factor`, mode "nearest", "nearest-exact" or "bilinear"
    (see F.upsample)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool = False):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        if mode not in ("nearest", "nearest-exact", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest', 'nearest-exact' or 'bilinear', got {mode!r}")
        if mode != "bilinear" and align_corners:
            raise ValueError("Upsample: align_corners=True only applies to mode='bilinear'")
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.upsample(x, self.scale_factor, self.size, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}" + (", align_corners=True" if self.align_corners else "")


# --- pooling --------------------------------------------------------------------------------
def _unsupported(layer: str, **options) -> None:
    """Refuse PyTorch options this layer does not implement, rather than ignore them."""
    for name, (value, default) in options.items():
        if (value is not None) if default is None else (value != default):
            shown = f"a {type(value).__name__}" if default is None else repr(value)
            raise NotImplementedError(f"{layer}: {name}= {shown} is not supported (only {name}={default!r})")


class MaxPool2d(Module):
    """Max over kernel windows (see F.max_pool2d); the stride defaults to the kernel size (non-overlapping
    windows). ceil_mode=True keeps a last, partial window; return_indices=True also returns the indices."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = stride if stride is not None else kernel_size
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")  # torch's repr


class AvgPool2d(Module):
    """Mean over kernel windows (see F.avg_pool2d); count_include_pad=False leaves zero padding out of the
    divisor, and divisor_override divides every window's sum by that number instead. Arguments in
    PyTorch's order."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        if divisor_override is not None:
            _positive_int(divisor_override, "divisor_override")
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = stride if stride is not None else kernel_size
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean over PyTorch's adaptive windows to a fixed output size (see F.adaptive_avg_pool2d);
    AdaptiveAvgPool2d(1) is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        F._adaptive_output_size(type(self).__name__, output_size)
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Max over PyTorch's adaptive windows (see F.adaptive_max_pool2d)."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


# --- normalisation and dropout ------------------------------------------------------------------
class _BatchNorm(Module):
    """Shared BatchNorm logic; subclasses only say which input ranks they accept.

    In training the batch statistics normalise and the running statistics are
    updated (running = (1 - momentum) * running + momentum * batch, with the
    unbiased batch variance; momentum=None means a cumulative average). In eval
    the running statistics normalise, unless track_running_stats=False.
    """

    _accepted_ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        _place(self, device)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self._accepted_ndims:
            shapes = " or ".join({2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}[n] for n in self._accepted_ndims)
            raise ValueError(f"{type(self).__name__}: expected input {shapes}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input of shape {x.shape} has "
                             f"{x.shape[1]} channels")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        # As in PyTorch: without running statistics even evaluation normalises with the batch's,
        # and running statistics are passed only when they are to be used or updated.
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        pass_running = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if pass_running else None,
                            self.running_var if pass_running else None,
                            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""
    _accepted_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""
    _accepted_ndims = (4,)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics are those of the global batch: every rank of the
    process group (tinygrad_course.distributed) contributes, as torch.nn.SyncBatchNorm. With it, N ranks
    of DistributedDataParallel compute what one process computes on the concatenated batch.

    Training: per channel, the ranks' sums and counts are summed over the ranks (one all_reduce), then
    the sums of squared deviations from the global mean (a second one, two-pass for accuracy); the
    all_reduces are differentiable (the backward sums the ranks' gradients), so backward runs two more.
    It is made of tensor ops, not the fused batch-norm kernel: slower per layer, plus four small
    collectives. Eval mode, or no process group, behaves as BatchNorm. Accepts (N, C, ...) inputs;
    `convert_sync_batchnorm(model)` swaps a model's BatchNorm layers for it, sharing their tensors."""
    _accepted_ndims = (2, 3, 4, 5)

    def forward(self, x: Tensor) -> Tensor:
        from .. import distributed as dist
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        count = Tensor(np.full(1, x.numel() // x.shape[1], dtype=x.dtype), device=x.device)
        totals = dist._summed_over_ranks(concat([x.sum(axes), count]))
        n = float(totals[-1].item())
        if n < 2:
            raise ValueError(f"SyncBatchNorm: training needs more than one value per channel over all ranks, "
                             f"input has shape {x.shape}")
        mean = totals[:-1] / n
        centred = x - mean.reshape(shape)
        var = dist._summed_over_ranks((centred * centred).sum(axes)) / n
        out = centred / (var + self.eps).sqrt().reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * (n / (n - 1)))
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm1d/2d replaced by a SyncBatchNorm that shares its parameters and
        buffers (the module itself if it is one). process_group: accepted for PyTorch's scripts (the
        world is the only group)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            for name in ("weight", "bias"):
                sync._parameters[name] = module._parameters[name]
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers[name]
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child)
            if converted is not child:
                module.add_module(name, converted)
        return module


class LayerNorm(Module):
    """Normalise each sample over its trailing `normalized_shape` axes."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, (int, np.integer))
                                 else tuple(int(s) for s in normalized_shape))
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = _dtype(dtype)
        self.register_parameter("weight", Parameter(np.ones(self.normalized_shape, dtype=dtype))
                                if elementwise_affine else None)
        self.register_parameter("bias", Parameter(np.zeros(self.normalized_shape, dtype=dtype))
                                if elementwise_affine and bias else None)
        _place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


def _group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """Normalise each sample's channel groups over the group's channels and all positions (biased variance,
    as PyTorch), then scale and shift per channel."""
    grouped = x.reshape(x.shape[0], groups, -1)
    mean = grouped.mean(2, True)
    var = grouped.var(2, True, 0)
    out = ((grouped - mean) / (var + eps).sqrt()).reshape(x.shape)
    per_channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out


class GroupNorm(Module):
    """Normalise each sample over groups of channels (and all positions): num_groups=1 is a LayerNorm
    over (C, H, W), num_groups=C an InstanceNorm; then a per-channel affine. Independent of the batch
    size, so it suits small batches where BatchNorm's statistics are noisy."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups")
        self.num_channels = _positive_int(num_channels, "num_channels")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        self.eps, self.affine = eps, affine
        dtype = _dtype(dtype)
        self.register_parameter("weight", Parameter(np.ones(num_channels, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_channels, dtype=dtype)) if affine and bias else None)
        _place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected input (N, "
                             f"{self.num_channels}, ...), got shape {x.shape}")
        return _group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class InstanceNorm2d(Module):
    """Normalise each sample's channels separately over (H, W) (style transfer, GANs); no learnt scale
    by default (affine=False), as in PyTorch. Running statistics (track_running_stats=True) are refused."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _unsupported("InstanceNorm2d", track_running_stats=(track_running_stats, False))
        self.num_features = _positive_int(num_features, "num_features")
        self.eps, self.momentum, self.affine, self.track_running_stats = eps, momentum, affine, track_running_stats
        dtype = _dtype(dtype)
        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None)
        _place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 3:  # one unbatched image (C, H, W)
            return self.forward(x.reshape((1,) + x.shape)).reshape(x.shape)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d({self.num_features}): expected input (N, {self.num_features}, H, W), "
                             f"got shape {x.shape}")
        return _group_norm(x, self.num_features, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class Dropout(Module):
    """Zero each element with probability p in training (scaling the rest by 1/(1-p)); identity in eval.

    inplace (here and on activations) is accepted for PyTorch code and computed out of place: the
    result and gradients are the same, only the input is left unchanged.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels: each (sample, channel) map of an (N, C, H, W) input is dropped with probability p
    (survivors scaled by 1/(1-p)) in training; identity in eval. A 3-D input is taken as (N, C, L), as in
    PyTorch. Better than Dropout after convolutions, whose neighbouring pixels are strongly correlated."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"Dropout2d: expected input (N, C, H, W) or (N, C, L), got shape {x.shape}")
        if not self.training or self.p == 0.0:
            return x
        keep = get_rng().random(x.shape[:2] + (1,) * (x.ndim - 2)) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        return x * Tensor((keep * scale).astype(x.dtype), device=x.device)


# --- activations ----------------------------------------------------------------------------------
class ReLU(Module):
    def __init__(self, inplace: bool = False):  # inplace: see Dropout
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """Leaky ReLU whose negative slope is learnt: one shared, or one per channel (axis 1)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = _positive_int(num_parameters, "num_parameters")
        self.weight = Parameter(np.full(num_parameters, init, dtype=_dtype(dtype)))
        _place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(ReLU):  # x * sigmoid(x), a.k.a. swish; inplace: see Dropout
    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class ReLU6(ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


class Mish(ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


class Hardswish(ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return F.hardswish(x)


class Hardsigmoid(ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return F.hardsigmoid(x)


class SELU(ReLU):
    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x)


class Softsign(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.softsign(x)


class Tanhshrink(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanhshrink(x)


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.threshold(x, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class Hardshrink(Module):
    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return F.hardshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    def forward(self, x: Tensor) -> Tensor:
        return F.softshrink(x, self.lambd)


class GLU(Module):
    """Gated linear unit: the first half of `dim` times the sigmoid of the second."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    def forward(self, x: Tensor) -> Tensor:
        return F.celu(x, self.alpha)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if not min_val < max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} must be below max_val {max_val}")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class LogSigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.logsigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Softmax(Module):
    """Softmax over `dim`. Without one, PyTorch's deprecated implicit choice, with its warning: dim 0
    for 0-, 1- and 3-d input, else 1 (so Softmax() on (N, C, H, W) is over the channels, not the last axis)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _dim(self, x: Tensor) -> int:
        if self.dim is not None:
            return self.dim
        warnings.warn(f"Implicit dimension choice for {type(self).__name__.lower()} has been deprecated "
                      "(as in PyTorch); give dim=", UserWarning, stacklevel=3)
        return 0 if x.ndim in (0, 1, 3) else 1

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self._dim(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self._dim(x))


class Softmin(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return F.softmin(x, self._dim(x))


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (the inverse of Flatten), e.g. (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        if dim is None:
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for input of shape {x.shape}")
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class _ConstantPad(Module):
    """Pad the last dims with `value`: an int pads every side, else PyTorch's order (left, right[, top, bottom])."""

    _sides = 2

    def __init__(self, padding, value: float):
        super().__init__()
        padding = (padding,) * self._sides if isinstance(padding, (int, np.integer)) else tuple(padding)
        if len(padding) != self._sides or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0
                                              for p in padding):
            raise ValueError(f"{type(self).__name__}: padding must be an int or {self._sides} non-negative ints, "
                             f"got {padding!r}")
        self.padding, self.value = tuple(int(p) for p in padding), value

    def forward(self, x: Tensor) -> Tensor:
        return x.pad(self.padding, self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPad):
    pass


class ConstantPad2d(_ConstantPad):
    _sides = 4


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class PixelShuffle(Module):
    """(N, C r^2, H, W) -> (N, C, H r, W r): channels become sub-pixel positions (super-resolution)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = _positive_int(upscale_factor, "upscale_factor")

    def forward(self, x: Tensor) -> Tensor:
        r = self.upscale_factor
        if x.ndim != 4 or x.shape[1] % (r * r):
            raise ValueError(f"PixelShuffle({r}): expected input (N, C * {r * r}, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        return x.reshape(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """The inverse of PixelShuffle: (N, C, H r, W r) -> (N, C r^2, H, W)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = _positive_int(downscale_factor, "downscale_factor")

    def forward(self, x: Tensor) -> Tensor:
        r = self.downscale_factor
        if x.ndim != 4 or x.shape[2] % r or x.shape[3] % r:
            raise ValueError(f"PixelUnshuffle({r}): expected input (N, C, H, W) with H and W divisible by {r}, "
                             f"got shape {x.shape}")
        n, c, h, w = x.shape
        return x.reshape(n, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Identity(Module):
    """Returns its input; a placeholder where an architecture option is switched off."""

    def __init__(self, *args, **kwargs):  # arguments are ignored, as in PyTorch, so it can stand in for any layer
        super().__init__()

    def forward(self, x):
        return x


# --- losses -------------------------------------------------------------------------------------
def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated size_average/reduce flags, translated to a reduction as PyTorch does."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


class _Loss(Module):
    """Losses take PyTorch's arguments in PyTorch's order (and its deprecated size_average/reduce)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        reduction = _legacy_reduction(size_average, reduce, reduction)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    """A loss with weights (per class, or per element for BCE), kept as a buffer (it follows .to() and is
    saved, as in PyTorch)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"{type(self).__name__}: weight must be a Tensor (of one weight per class, or "
                            f"broadcasting to the input for BCE), got a {type(weight).__name__}")
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax + negative log-likelihood from raw logits (N, C) and class indices (or probabilities);
    class weights and ignore_index as in F.cross_entropy."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, self.label_smoothing, self.reduction, weight=self.weight,
                               ignore_index=self.ignore_index)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices from log-probabilities (pair with LogSoftmax)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, log_probs: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(log_probs, target, self.reduction, weight=self.weight, ignore_index=self.ignore_index)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy with the sigmoid fused in: finite even for logits of +-100. weight rescales
    each element, pos_weight the positive term (one per class: broadcast over the last dim); both are
    buffers, as in PyTorch."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        if pos_weight is not None and not isinstance(pos_weight, Tensor):
            raise TypeError(f"BCEWithLogitsLoss: pos_weight must be a Tensor (one weight per class), "
                            f"got a {type(pos_weight).__name__}")
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.weight, self.reduction, self.pos_weight)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (logs clamped at -100 as in PyTorch); weight rescales each element."""

    def forward(self, probs: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(probs, target, self.weight, self.reduction)


class MSELoss(_Loss):
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(pred, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(pred, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below |error| = beta, linear above (less sensitive to outliers than MSE)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(pred, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Quadratic below |error| = delta, linear above: SmoothL1Loss scaled by delta."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(pred, target, self.reduction, self.delta)


class KLDivLoss(_Loss):
    """KL divergence from log-probabilities (input) to a target distribution; reduction="batchmean"
    gives the true KL divergence per sample (PyTorch's "mean" averages over every element)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        batchmean = reduction == "batchmean"
        super().__init__(size_average, reduce, "mean" if batchmean else reduction)
        self.reduction = "batchmean" if batchmean else self.reduction
        self.log_target = log_target

    def forward(self, log_pred: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(log_pred, target, self.reduction, self.log_target)


class DiceLoss(_Loss):
    """Soft Dice loss from per-pixel logits and a binary (or soft) mask, per sample then reduced."""

    def __init__(self, smooth: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        self.smooth = smooth

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.dice_loss(logits, target, self.smooth, self.reduction)


class JaccardLoss(DiceLoss):
    """Soft Jaccard (IoU) loss from per-pixel logits and a binary (or soft) mask, per sample then reduced."""

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.jaccard_loss(logits, target, self.smooth, self.reduction)


class FocalLoss(_Loss):
    """Binary focal loss on logits (torchvision's sigmoid_focal_loss); alpha=None disables class weighting."""

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.focal_loss(logits, target, self.alpha, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}" + (f", {super().extra_repr()}" if super().extra_repr() else "")
