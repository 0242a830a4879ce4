// Helpers shared by the binding files: argument checks that raise Python
// exceptions naming the offending shapes and dtypes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <string>

namespace tgc_bind {

namespace py = pybind11;

// Formats a shape like Python does for tuples: (2, 3), (5,), ().
inline std::string shape_str(const py::array& a) {
  std::ostringstream os;
  os << '(';
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (d) os << ", ";
    os << a.shape(d);
  }
  if (a.ndim() == 1) os << ',';
  os << ')';
  return os.str();
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// True for float32, false for float64; TypeError naming every dtype otherwise
// (all arrays must share one of the two: nothing is converted implicitly).
template <typename... Arrays>
bool require_float_dtype(const char* op, const py::array& first, const Arrays&... rest) {
  const bool f32 = py::isinstance<py::array_t<float>>(first);
  const bool f64 = py::isinstance<py::array_t<double>>(first);
  const bool same = ((rest.dtype().equal(first.dtype())) && ...);
  if ((!f32 && !f64) || !same) {
    std::string got = dtype_str(first);
    ((got += ", " + dtype_str(rest)), ...);
    throw py::type_error(std::string(op) + ": arrays must all be float32 or all float64, got " + got);
  }
  return f32;
}

// A C-contiguous view of `a` (copied once if it is not contiguous); never converts the dtype.
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
  auto c = py::array_t<T, py::array::c_style>::ensure(a);
  if (!c) throw py::error_already_set();
  return c;
}

}  // namespace tgc_bind
