// Bindings of the elementwise kernels: tinygrad_course._C.relu / relu_grad.
#include <cstdint>
#include <vector>

#include "common.h"
#include "elementwise.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

template <typename T>
py::array relu_impl(const py::array& x_in) {
  const auto x = contiguous<T>(x_in);
  py::array_t<T> y(shape_of(x_in));
  const T* px = x.data();
  T* py_ = y.mutable_data();
  const std::int64_t n = x.size();
  {
    py::gil_scoped_release release;
    tgc::relu_forward<T>(px, py_, n);
  }
  return std::move(y);
}

template <typename T>
py::array relu_grad_impl(const py::array& g_in, const py::array& x_in) {
  const auto g = contiguous<T>(g_in);
  const auto x = contiguous<T>(x_in);
  py::array_t<T> gx(shape_of(x_in));
  const T* pg = g.data();
  const T* px = x.data();
  T* pgx = gx.mutable_data();
  const std::int64_t n = x.size();
  {
    py::gil_scoped_release release;
    tgc::relu_backward<T>(pg, px, pgx, n);
  }
  return std::move(gx);
}

py::array relu(const py::array& x) {
  return require_float_dtype("relu", x) ? relu_impl<float>(x) : relu_impl<double>(x);
}

py::array relu_grad(const py::array& g, const py::array& x) {
  const bool f32 = require_float_dtype("relu_grad", g, x);
  if (shape_of(g) != shape_of(x)) {
    throw py::value_error("relu_grad: gradient shape " + shape_str(g) + " differs from input shape " +
                          shape_str(x));
  }
  return f32 ? relu_grad_impl<float>(g, x) : relu_grad_impl<double>(g, x);
}

}  // namespace

void bind_elementwise(py::module_& m) {
  m.def("relu", named("relu", &relu), py::arg("x"), "max(x, 0) of a float32/float64 array (NaN passes through).");
  m.def("relu_grad", named("relu_grad", &relu_grad), py::arg("g"), py::arg("x"), "g * (x > 0), same shapes and dtype.");
}
