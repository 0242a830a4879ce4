// Bindings of the convolution kernels: tinygrad_course._C.conv2d,
// conv2d_grad_input, conv2d_grad_weight (and conv2d_algorithms, which reports
// the algorithm each of them picks).
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"
#include "conv2d.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

using i64 = std::int64_t;
using Shape = std::vector<i64>;

std::string tuple_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ',';
  return out + ")";
}

Shape shape_of(const py::array& a) {
  Shape s;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s.push_back(static_cast<i64>(a.shape(d)));
  return s;
}

// A 4-D shape argument (x_shape / w_shape).
Shape shape4_arg(const char* op, const char* what, const py::handle& obj) {
  return shape_arg(op, what, obj, 4, "(N, C, H, W) / (F, C/groups, KH, KW)");
}

tgc::ConvAlgo algo_arg(const char* op, const std::string& name) {
  if (name == "auto") return tgc::ConvAlgo::kAuto;
  if (name == "gemm") return tgc::ConvAlgo::kGemm;
  if (name == "direct") return tgc::ConvAlgo::kDirect;
  if (name == "direct_channels") return tgc::ConvAlgo::kDirectChannels;
  throw py::value_error(std::string(op) +
                        ": algorithm must be 'auto', 'gemm', 'direct' or 'direct_channels', got '" +
                        name + "'");
}

const char* algo_name(tgc::ConvAlgo a) {
  switch (a) {
    case tgc::ConvAlgo::kGemm: return "gemm";
    case tgc::ConvAlgo::kDirect: return "direct";
    case tgc::ConvAlgo::kDirectChannels: return "direct_channels";
    default: return "auto";
  }
}

// Validates the geometry shared by the three entry points and returns the kernel parameters.
tgc::Conv2dParams make_params(const char* op, const Shape& xs, const Shape& ws,
                              const py::handle& stride, const py::handle& padding,
                              const py::handle& dilation, const py::handle& groups_arg,
                              const std::string& algo) {
  if (xs.size() != 4)
    throw py::value_error(std::string(op) + ": input must be 4-D (N, C, H, W), got shape " +
                          tuple_str(xs));
  if (ws.size() != 4)
    throw py::value_error(std::string(op) +
                          ": weight must be 4-D (F, C/groups, KH, KW), got shape " + tuple_str(ws));
  for (i64 v : xs)
    if (v > kMaxDim) throw py::value_error(std::string(op) + ": input shape " + tuple_str(xs) +
                                           " has a dimension over " + std::to_string(kMaxDim));
  for (i64 v : ws)
    if (v > kMaxDim) throw py::value_error(std::string(op) + ": weight shape " + tuple_str(ws) +
                                           " has a dimension over " + std::to_string(kMaxDim));
  const auto [sh, sw] = pair_arg(op, "stride", stride, 1, kMaxDim);
  const auto [ph, pw] = pair_arg(op, "padding", padding, 0, kMaxDim);
  const auto [dh, dw] = pair_arg(op, "dilation", dilation, 1, kMaxDim);
  const i64 groups = int_arg(op, "groups", groups_arg, 1, kMaxDim);
  const std::string shapes = "input shape " + tuple_str(xs) + " and weight shape " + tuple_str(ws);
  if (ws[0] % groups != 0)
    throw py::value_error(std::string(op) + ": weight shape " + tuple_str(ws) + " has " +
                          std::to_string(ws[0]) + " output channels, not divisible by groups=" +
                          std::to_string(groups));
  if (ws[1] * groups != xs[1])
    throw py::value_error(std::string(op) + ": " + shapes + " do not match: the input has " +
                          std::to_string(xs[1]) + " channels, the weight expects " +
                          std::to_string(ws[1]) + " * groups=" + std::to_string(groups) + " = " +
                          std::to_string(ws[1] * groups));
  if (ws[2] < 1 || ws[3] < 1)
    throw py::value_error(std::string(op) + ": weight shape " + tuple_str(ws) +
                          " has an empty kernel");

  tgc::Conv2dParams p;
  p.n = xs[0], p.c = xs[1], p.h = xs[2], p.w = xs[3];
  p.f = ws[0], p.kh = ws[2], p.kw = ws[3];
  p.sh = sh, p.sw = sw, p.ph = ph, p.pw = pw, p.dh = dh, p.dw = dw, p.groups = groups;
  p.algo = algo_arg(op, algo);
  // floor division of a possibly negative numerator (Python's //)
  auto out_size = [](i64 size, i64 k, i64 s, i64 pad, i64 d) {
    const i64 num = size + 2 * pad - d * (k - 1) - 1;
    return (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  };
  const i64 oh = out_size(p.h, p.kh, sh, ph, dh), ow = out_size(p.w, p.kw, sw, pw, dw);
  if (oh < 1 || ow < 1)
    throw py::value_error(std::string(op) + ": " + shapes + " give an output of size (" +
                          std::to_string(oh) + ", " + std::to_string(ow) +
                          ") with stride (" + std::to_string(sh) + ", " + std::to_string(sw) +
                          "), padding (" + std::to_string(ph) + ", " + std::to_string(pw) +
                          "), dilation (" + std::to_string(dh) + ", " + std::to_string(dw) +
                          "); the (dilated) kernel is larger than the padded input");
  // With one output row (column) the stride is never applied; the kernels'
  // phase planes grow with it, so use the smallest stride that gives one row.
  if (oh == 1) p.sh = p.h + 2 * ph - dh * (p.kh - 1);
  if (ow == 1) p.sw = p.w + 2 * pw - dw * (p.kw - 1);
  if (bounded_product({p.n, p.f, oh, ow}) < 0 || bounded_product({p.c, p.h + 2 * ph, p.w + 2 * pw}) < 0 ||
      bounded_product({p.c, p.kh, p.kw, oh, ow}) < 0)
    throw py::value_error(std::string(op) + ": " + shapes + " with stride (" + std::to_string(sh) + ", " +
                          std::to_string(sw) + "), padding (" + std::to_string(ph) + ", " + std::to_string(pw) +
                          ") and dilation (" + std::to_string(dh) + ", " + std::to_string(dw) +
                          ") need more than 2**48 elements for the output, the padded input or its "
                          "columns; use a smaller padding or input");
  return p;
}

Shape out_shape(const tgc::Conv2dParams& p) { return {p.n, p.f, p.oh(), p.ow()}; }

void check_gy(const char* op, const py::array& gy, const tgc::Conv2dParams& p, const Shape& xs,
              const Shape& ws) {
  const Shape expect = out_shape(p);
  if (shape_of(gy) != expect)
    throw py::value_error(std::string(op) + ": grad_output shape " + shape_str(gy) +
                          " does not match the output shape " + tuple_str(expect) +
                          " of input shape " + tuple_str(xs) + " and weight shape " +
                          tuple_str(ws));
}

template <typename T>
py::array forward_impl(const tgc::Conv2dParams& p, const py::array& x_in, const py::array& w_in,
                       const py::object& b_in) {
  const auto x = contiguous<T>(x_in);
  const auto w = contiguous<T>(w_in);
  py::array_t<T, py::array::c_style> b;
  const T* pb = nullptr;
  if (!b_in.is_none()) {
    b = contiguous<T>(b_in.cast<py::array>());
    pb = b.data();
  }
  const Shape os = out_shape(p);
  py::array_t<T> y(std::vector<py::ssize_t>(os.begin(), os.end()));
  const T* px = x.data();
  const T* pw = w.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::conv2d_forward<T>(p, px, pw, pb, py_);
  }
  return std::move(y);
}

py::array conv2d(const py::array& x, const py::array& w, const py::object& b,
                 const py::object& stride, const py::object& padding, const py::object& dilation,
                 const py::object& groups, const std::string& algorithm) {
  constexpr const char* op = "conv2d";
  bool f32;
  if (b.is_none()) {
    f32 = require_float_dtype(op, x, w);
  } else {
    if (!py::isinstance<py::array>(b))
      throw py::type_error(std::string(op) + ": bias must be a numpy array or None");
    f32 = require_float_dtype(op, x, w, b.cast<py::array>());
  }
  const Shape xs = shape_of(x), ws = shape_of(w);
  const tgc::Conv2dParams p = make_params(op, xs, ws, stride, padding, dilation, groups, algorithm);
  if (!b.is_none()) {
    const auto ba = b.cast<py::array>();
    if (shape_of(ba) != Shape{p.f})
      throw py::value_error(std::string(op) + ": bias shape " + shape_str(ba) + " must be (" +
                            std::to_string(p.f) + ",) for weight shape " + tuple_str(ws));
  }
  return f32 ? forward_impl<float>(p, x, w, b) : forward_impl<double>(p, x, w, b);
}

template <typename T>
py::array grad_input_impl(const tgc::Conv2dParams& p, const py::array& gy_in,
                          const py::array& w_in) {
  const auto gy = contiguous<T>(gy_in);
  const auto w = contiguous<T>(w_in);
  py::array_t<T> gx(std::vector<py::ssize_t>{p.n, p.c, p.h, p.w});
  const T* pg = gy.data();
  const T* pw = w.data();
  T* px = gx.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::conv2d_grad_input<T>(p, pg, pw, px);
  }
  return std::move(gx);
}

py::array conv2d_grad_input(const py::array& gy, const py::array& w, const py::object& x_shape,
                            const py::object& stride, const py::object& padding,
                            const py::object& dilation, const py::object& groups, const std::string& algorithm) {
  constexpr const char* op = "conv2d_grad_input";
  const bool f32 = require_float_dtype(op, gy, w);
  const Shape xs = shape4_arg(op, "x_shape", x_shape), ws = shape_of(w);
  const tgc::Conv2dParams p = make_params(op, xs, ws, stride, padding, dilation, groups, algorithm);
  check_gy(op, gy, p, xs, ws);
  return f32 ? grad_input_impl<float>(p, gy, w) : grad_input_impl<double>(p, gy, w);
}

template <typename T>
py::array grad_weight_impl(const tgc::Conv2dParams& p, const py::array& gy_in,
                           const py::array& x_in) {
  const auto gy = contiguous<T>(gy_in);
  const auto x = contiguous<T>(x_in);
  py::array_t<T> gw(std::vector<py::ssize_t>{p.f, p.c / p.groups, p.kh, p.kw});
  const T* pg = gy.data();
  const T* px = x.data();
  T* pw = gw.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::conv2d_grad_weight<T>(p, pg, px, pw);
  }
  return std::move(gw);
}

py::array conv2d_grad_weight(const py::array& gy, const py::array& x, const py::object& w_shape,
                             const py::object& stride, const py::object& padding,
                             const py::object& dilation, const py::object& groups,
                             const std::string& algorithm) {
  constexpr const char* op = "conv2d_grad_weight";
  const bool f32 = require_float_dtype(op, gy, x);
  const Shape xs = shape_of(x), ws = shape4_arg(op, "w_shape", w_shape);
  const tgc::Conv2dParams p = make_params(op, xs, ws, stride, padding, dilation, groups, algorithm);
  check_gy(op, gy, p, xs, ws);
  return f32 ? grad_weight_impl<float>(p, gy, x) : grad_weight_impl<double>(p, gy, x);
}

py::dict conv2d_algorithms(const py::object& x_shape, const py::object& w_shape,
                           const py::object& stride, const py::object& padding,
                           const py::object& dilation, const py::object& groups, const py::object& dtype) {
  constexpr const char* op = "conv2d_algorithms";
  const Shape xs = shape4_arg(op, "x_shape", x_shape), ws = shape4_arg(op, "w_shape", w_shape);
  const tgc::Conv2dParams p = make_params(op, xs, ws, stride, padding, dilation, groups, "auto");
  const py::dtype dt = py::dtype::from_args(dtype);
  if (!dt.equal(py::dtype::of<float>()) && !dt.equal(py::dtype::of<double>()))
    throw py::type_error(std::string(op) + ": dtype must be float32 or float64, got " +
                         py::str(dt).cast<std::string>());
  const std::size_t es = static_cast<std::size_t>(dt.itemsize());
  py::dict d;
  d["forward"] = algo_name(tgc::conv2d_forward_algo(p, es));
  d["grad_input"] = algo_name(tgc::conv2d_grad_input_algo(p, es));
  d["grad_weight"] = algo_name(tgc::conv2d_grad_weight_algo(p, es));
  return d;
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", named("conv2d", &conv2d), py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("algorithm") = "auto",
        R"doc(2-D convolution (cross-correlation) of NCHW arrays.

x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or None; stride, padding,
dilation are (h, w) pairs (or ints). Returns y (N, F, OH, OW) with
OH = (H + 2 ph - dh (KH - 1) - 1) // sh + 1 (likewise OW). All arrays float32
or all float64 (TypeError otherwise); ValueError naming the shapes when they do
not fit. Non-contiguous inputs are copied once; the GIL is released while the
kernel runs. `algorithm`: "auto" (default), "gemm" (im2col + GEMM), "direct"
(direct kernel vectorised over output width) or "direct_channels" (direct
kernel vectorised over output channels, skipping padding taps); for testing and
benchmarking.)doc");
  m.def("conv2d_grad_input", named("conv2d_grad_input", &conv2d_grad_input), py::arg("gy"), py::arg("w"), py::arg("x_shape"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("algorithm") = "auto",
        R"doc(Gradient of conv2d with respect to its input: gx of shape x_shape.

gy must have the output shape of a convolution of an x_shape input with w.
`algorithm` "direct" and "direct_channels" apply to stride 1 only (other strides
use "gemm").)doc");
  m.def("conv2d_grad_weight", named("conv2d_grad_weight", &conv2d_grad_weight), py::arg("gy"), py::arg("x"),
        py::arg("w_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("algorithm") = "auto",
        R"doc(Gradient of conv2d with respect to its weight: gw of shape w_shape.

Summed over the batch; per-thread partial sums are added in a fixed order, so
the result is deterministic for a given number of threads.)doc");
  m.def("conv2d_algorithms", named("conv2d_algorithms", &conv2d_algorithms), py::arg("x_shape"), py::arg("w_shape"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("dtype") = py::str("float32"),
        "Dict {'forward', 'grad_input', 'grad_weight'} -> 'gemm', 'direct' or 'direct_channels':\n"
        "what 'auto' picks for this geometry and dtype (float32 or float64).");
}
