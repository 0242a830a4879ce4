// Bindings of the pooling kernels (src/pool.h): tinygrad_course._C.max_pool2d,
// max_pool2d_grad, avg_pool2d, avg_pool2d_grad. Same contract as the methods of
// NumpyBackend (python/tinygrad_course/backend/numpy_backend.py).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "pool.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

using Shape4 = std::vector<std::int64_t>;
using Pair = std::pair<std::int64_t, std::int64_t>;

std::string pair_str(const Pair& p) {
  return "(" + std::to_string(p.first) + ", " + std::to_string(p.second) + ")";
}

std::string shape4_str(const Shape4& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// x_shape: 4 non-negative ints (N, C, H, W).
Shape4 x_shape_arg(const char* op, const py::handle& obj) {
  Shape4 s = shape_arg(op, "x_shape", obj, 4, "(N, C, H, W)");
  if (bounded_product({s[0], s[1], s[2], s[3]}) < 0) {
    throw py::value_error(std::string(op) + ": x_shape " + shape4_str(s) + " has more than 2**48 elements");
  }
  return s;
}

// Validates kernel/stride/padding against an (N, C, H, W) input and computes the output size.
tgc::Pool2dShape pool_shape(const char* op, const Shape4& x, const py::handle& kernel,
                            const py::handle& stride, const py::handle& padding) {
  const Pair k = pair_arg(op, "kernel", kernel, 1, kMaxDim);
  const Pair s = pair_arg(op, "stride", stride, 1, kMaxDim);
  const Pair p = pair_arg(op, "padding", padding, 0, kMaxDim);
  if (x[2] == 0 || x[3] == 0) {  // every window would be all padding (PyTorch refuses it too)
    throw py::value_error(std::string(op) + ": input " + shape4_str(x) +
                          " has an empty (H, W) plane; pooling needs H >= 1 and W >= 1");
  }
  if (p.first > k.first / 2 || p.second > k.second / 2) {
    throw py::value_error(std::string(op) + ": padding " + pair_str(p) +
                          " must be between 0 and half the kernel " + pair_str(k));
  }
  tgc::Pool2dShape r{x[0], x[1], x[2], x[3], k.first, k.second, s.first, s.second,
                     p.first, p.second, 0, 0};
  r.oh = tgc::pool_output_size(r.h, r.kh, r.sh, r.ph);
  r.ow = tgc::pool_output_size(r.w, r.kw, r.sw, r.pw);
  if (r.oh < 1 || r.ow < 1) {
    throw py::value_error(std::string(op) + ": input " + shape4_str(x) +
                          " is smaller than the kernel " + pair_str(k) + " with padding " +
                          pair_str(p));
  }
  // With one window per column (row) the stride is never applied; the kernels'
  // phase planes grow with it, so use the smallest stride that gives one window.
  if (r.oh == 1) r.sh = r.h + 2 * r.ph - r.kh + 1;
  if (r.ow == 1) r.sw = r.w + 2 * r.pw - r.kw + 1;
  if (bounded_product({r.n, r.c, r.oh, r.ow}) < 0 ||
      bounded_product({r.h + 2 * r.ph, r.w + 2 * r.pw}) < 0) {
    throw py::value_error(std::string(op) + ": input " + shape4_str(x) + " with kernel " + pair_str(k) +
                          ", stride " + pair_str(s) + " and padding " + pair_str(p) +
                          " needs more than 2**48 elements of output or padded input per plane");
  }
  return r;
}

Shape4 shape_of(const py::array& a) {
  Shape4 s;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s.push_back(a.shape(d));
  return s;
}

void require_4d(const char* op, const char* name, const py::array& a) {
  if (a.ndim() != 4) {
    throw py::value_error(std::string(op) + ": expected a 4-D " + name +
                          " (N, C, H, W), got shape " + shape_str(a));
  }
}

void require_int64(const char* op, const char* name, const py::array& a) {
  if (!py::isinstance<py::array_t<std::int64_t>>(a)) {
    throw py::type_error(std::string(op) + ": " + name + " must be int64, got " + dtype_str(a));
  }
}

template <typename T>
py::tuple max_pool2d_impl(const py::array& x_in, const tgc::Pool2dShape& s) {
  const auto x = contiguous<T>(x_in);
  py::array_t<T> y({s.n, s.c, s.oh, s.ow});
  py::array_t<std::int64_t> argmax({s.n, s.c, s.oh, s.ow});
  const T* px = x.data();
  T* py_ = y.mutable_data();
  std::int64_t* pa = argmax.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::max_pool2d_forward<T>(px, py_, pa, s);
  }
  return py::make_tuple(std::move(y), std::move(argmax));
}

py::tuple max_pool2d(const py::array& x, const py::object& kernel, const py::object& stride,
                     const py::object& padding) {
  const char* op = "max_pool2d";
  const bool f32 = require_float_dtype(op, x);
  require_4d(op, "input", x);
  require_dims_bounded(op, "input", x);
  const auto s = pool_shape(op, shape_of(x), kernel, stride, padding);
  return f32 ? max_pool2d_impl<float>(x, s) : max_pool2d_impl<double>(x, s);
}

template <typename T>
py::array max_pool2d_grad_impl(const py::array& gy_in, const py::array& am_in,
                               const tgc::Pool2dShape& s) {
  const auto gy = contiguous<T>(gy_in);
  const auto am = contiguous<std::int64_t>(am_in);
  py::array_t<T> gx({s.n, s.c, s.h, s.w});
  const T* pg = gy.data();
  const std::int64_t* pa = am.data();
  T* px = gx.mutable_data();
  std::int64_t bad;
  {
    py::gil_scoped_release release;
    bad = tgc::max_pool2d_backward<T>(pg, pa, px, s);
  }
  if (bad >= 0) {
    const std::int64_t ohw = s.oh * s.ow, plane = bad / ohw, q = bad % ohw;
    throw py::index_error("max_pool2d_grad: argmax[" + std::to_string(plane / s.c) + ", " +
                          std::to_string(plane % s.c) + ", " + std::to_string(q / s.ow) + ", " +
                          std::to_string(q % s.ow) + "] = " + std::to_string(pa[bad]) +
                          " is outside the " + std::to_string(s.h) + " x " +
                          std::to_string(s.w) + " input plane of x_shape " +
                          shape4_str({s.n, s.c, s.h, s.w}));
  }
  return std::move(gx);
}

py::array max_pool2d_grad(const py::array& gy, const py::array& argmax, const py::object& x_shape) {
  const char* op = "max_pool2d_grad";
  const bool f32 = require_float_dtype(op, gy);
  require_int64(op, "argmax", argmax);
  const Shape4 xs = x_shape_arg(op, x_shape);
  require_4d(op, "gradient", gy);
  if (shape_of(argmax) != shape_of(gy) || gy.shape(0) != xs[0] || gy.shape(1) != xs[1]) {
    throw py::value_error(std::string(op) + ": gradient " + shape_str(gy) + " and argmax " +
                          shape_str(argmax) + " must both be (N, C, OH, OW) for x_shape " +
                          shape4_str(xs));
  }
  tgc::Pool2dShape s{xs[0], xs[1], xs[2], xs[3], 1, 1, 1, 1, 0, 0, gy.shape(2), gy.shape(3)};
  return f32 ? max_pool2d_grad_impl<float>(gy, argmax, s)
             : max_pool2d_grad_impl<double>(gy, argmax, s);
}

template <typename T>
py::array avg_pool2d_impl(const py::array& x_in, const tgc::Pool2dShape& s, bool cip) {
  const auto x = contiguous<T>(x_in);
  py::array_t<T> y({s.n, s.c, s.oh, s.ow});
  const T* px = x.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::avg_pool2d_forward<T>(px, py_, s, cip);
  }
  return std::move(y);
}

py::array avg_pool2d(const py::array& x, const py::object& kernel, const py::object& stride,
                     const py::object& padding, bool count_include_pad) {
  const char* op = "avg_pool2d";
  const bool f32 = require_float_dtype(op, x);
  require_4d(op, "input", x);
  require_dims_bounded(op, "input", x);
  const auto s = pool_shape(op, shape_of(x), kernel, stride, padding);
  return f32 ? avg_pool2d_impl<float>(x, s, count_include_pad)
             : avg_pool2d_impl<double>(x, s, count_include_pad);
}

template <typename T>
py::array avg_pool2d_grad_impl(const py::array& gy_in, const tgc::Pool2dShape& s, bool cip) {
  const auto gy = contiguous<T>(gy_in);
  py::array_t<T> gx({s.n, s.c, s.h, s.w});
  const T* pg = gy.data();
  T* px = gx.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::avg_pool2d_backward<T>(pg, px, s, cip);
  }
  return std::move(gx);
}

py::array avg_pool2d_grad(const py::array& gy, const py::object& x_shape, const py::object& kernel,
                          const py::object& stride, const py::object& padding,
                          bool count_include_pad) {
  const char* op = "avg_pool2d_grad";
  const bool f32 = require_float_dtype(op, gy);
  const Shape4 xs = x_shape_arg(op, x_shape);
  const auto s = pool_shape(op, xs, kernel, stride, padding);
  const Shape4 expected{s.n, s.c, s.oh, s.ow};
  if (shape_of(gy) != expected) {
    throw py::value_error(std::string(op) + ": gradient has shape " + shape_str(gy) +
                          ", expected " + shape4_str(expected) + " for x_shape " +
                          shape4_str(xs));
  }
  return f32 ? avg_pool2d_grad_impl<float>(gy, s, count_include_pad)
             : avg_pool2d_grad_impl<double>(gy, s, count_include_pad);
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d", named("max_pool2d", &max_pool2d), py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"),
        R"doc(2-D max pooling of a float32/float64 (N, C, H, W) array.

kernel, stride, padding: ints or (height, width) pairs; 0 <= padding <= kernel // 2.
Returns (y, argmax): y (N, C, OH, OW) and int64 argmax holding the flat
h * W + w input index of each maximum (first maximum in row-major window
order wins; the first NaN wins; padding never wins). The GIL is released.)doc");
  m.def("max_pool2d_grad", named("max_pool2d_grad", &max_pool2d_grad), py::arg("gy"), py::arg("argmax"),
        py::arg("x_shape"),
        R"doc(Gradient of max_pool2d: scatter-adds gy (N, C, OH, OW) at the int64 argmax
positions into a zero (N, C, H, W) array of gy's dtype. IndexError names an
argmax entry outside the H x W plane.)doc");
  m.def("avg_pool2d", named("avg_pool2d", &avg_pool2d), py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("count_include_pad") = true,
        R"doc(2-D average pooling of a float32/float64 (N, C, H, W) array; the zero padding
counts in the divisor when count_include_pad, else only elements inside the image do.)doc");
  m.def("avg_pool2d_grad", named("avg_pool2d_grad", &avg_pool2d_grad), py::arg("gy"), py::arg("x_shape"),
        py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("count_include_pad") = true,
        R"doc(Gradient of avg_pool2d with respect to its (N, C, H, W) input.)doc");
}
