// Helpers shared by the binding files: argument checks that raise Python
// exceptions naming the offending argument, shapes and dtypes, and the
// translation of every C++ failure into a Python exception (named()).
//
// What reaches the kernels is bounded here: every integer parameter and
// dimension by kMaxDim, every size derived from them (the padded input, the
// output, the pooling/conv phase planes) by kMaxElements, so that no size a
// kernel computes can overflow int64.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "memory.h"

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

[[noreturn]] inline void raise_memory_error(const std::string& message) {
  PyErr_SetString(PyExc_MemoryError, message.c_str());
  throw py::error_already_set();
}

// A C-contiguous, aligned view of `a` (copied once if it is not; a misaligned
// array is read through misaligned pointers otherwise, undefined behaviour).
// The dtype is checked before, so this never converts it, and a failed copy is
// a lack of memory: MemoryError.
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
  namespace npy = py::detail;
  auto& api = npy::npy_api::get();
  PyObject* c = api.PyArray_FromAny_(
      a.ptr(), py::dtype::of<T>().release().ptr(), 0, 0,
      npy::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | npy::npy_api::NPY_ARRAY_ALIGNED_ | npy::npy_api::NPY_ARRAY_ENSUREARRAY_,
      nullptr);
  if (!c) {
    py::error_already_set error;
    if (!error.matches(PyExc_MemoryError)) throw error;
    raise_memory_error("could not copy a non-contiguous array of shape " + shape_str(a) + " and dtype " +
                       dtype_str(a) + " (" + std::to_string(a.size()) + " elements) into a contiguous one");
  }
  return py::reinterpret_steal<py::array_t<T, py::array::c_style>>(c);
}

using i64 = std::int64_t;

// Bound on every integer parameter (stride, padding, dilation, groups, ...) and
// dimension handed to a kernel.
constexpr i64 kMaxDim = (i64{1} << 31) - 1;
// Bound on every size derived from them: 2**48 elements is more memory than any
// machine has, and products of such sizes with the small factors the kernels
// use (threads, vector lanes, chunks) stay far from int64 overflow.
constexpr i64 kMaxElements = i64{1} << 48;

inline std::string repr_str(const py::handle& obj) { return py::repr(obj).cast<std::string>(); }

// An integer argument in [lo, hi]: anything with __index__ (int, numpy integers,
// bool). TypeError otherwise, ValueError naming the bounds when outside them
// (including values that do not fit in int64).
inline i64 int_arg(const char* op, const char* name, const py::handle& obj, i64 lo, i64 hi) {
  if (!PyIndex_Check(obj.ptr())) {
    throw py::type_error(std::string(op) + ": " + name + " must be an int, got " + repr_str(obj));
  }
  const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || v < lo || v > hi) {
    const std::string range = hi == kMaxDim ? ">= " + std::to_string(lo) + " and at most " + std::to_string(hi)
                                            : "between " + std::to_string(lo) + " and " + std::to_string(hi);
    throw py::value_error(std::string(op) + ": " + name + " must be " + range + ", got " + repr_str(obj));
  }
  return static_cast<i64>(v);
}

// An int or a pair of ints (height, width), each in [lo, hi].
inline std::pair<i64, i64> pair_arg(const char* op, const char* name, const py::handle& obj, i64 lo,
                                    i64 hi) {
  if (PyIndex_Check(obj.ptr())) {
    const i64 v = int_arg(op, name, obj, lo, hi);
    return {v, v};
  }
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj) && py::len(obj) == 2) {
    const auto seq = py::reinterpret_borrow<py::sequence>(obj);
    const std::string what = std::string(name) + " " + repr_str(obj) + ": each";
    if (PyIndex_Check(seq[0].ptr()) && PyIndex_Check(seq[1].ptr())) {
      return {int_arg(op, what.c_str(), seq[0], lo, hi), int_arg(op, what.c_str(), seq[1], lo, hi)};
    }
  }
  throw py::type_error(std::string(op) + ": " + name + " must be an int or a pair of ints, got " + repr_str(obj));
}

// A shape argument (x_shape, w_shape): a sequence of `ndim` ints in [0, kMaxDim].
inline std::vector<i64> shape_arg(const char* op, const char* name, const py::handle& obj,
                                  std::size_t ndim, const char* layout) {
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj)) {
    throw py::type_error(std::string(op) + ": " + name + " must be a sequence of " + std::to_string(ndim) +
                         " ints " + layout + ", got " + repr_str(obj));
  }
  const auto seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != ndim) {
    throw py::value_error(std::string(op) + ": " + name + " must have " + std::to_string(ndim) + " entries " +
                          layout + ", got " + repr_str(obj));
  }
  std::vector<i64> s;
  const std::string what = std::string(name) + " " + repr_str(obj) + ": each entry";
  for (const auto& v : seq) s.push_back(int_arg(op, what.c_str(), v, 0, kMaxDim));
  return s;
}

// The product of non-negative sizes, or -1 when it exceeds kMaxElements.
inline i64 bounded_product(std::initializer_list<i64> sizes) {
  i64 p = 1;
  for (i64 v : sizes) {
    if (v != 0 && p > kMaxElements / v) return -1;
    p *= v;
  }
  return p;
}

// Every dimension of an array argument in [0, kMaxDim] (a 2**31-long axis of a
// 4-D image is a mistake, and the bound keeps the kernels' sizes in range).
inline void require_dims_bounded(const char* op, const char* name, const py::array& a) {
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) > kMaxDim) {
      throw py::value_error(std::string(op) + ": " + name + " of shape " + shape_str(a) + " has a dimension over " +
                            std::to_string(kMaxDim));
    }
  }
}

// Wraps a binding so that no C++ exception reaches Python untranslated or
// without the operation's name: a failed allocation (a kernel's scratch
// buffer: tgc::OutOfMemory, an output array, a contiguous copy) becomes a
// MemoryError "<op>: ..."; the pybind11 exceptions raised by the checks pass
// through unchanged.
template <typename R, typename... Args>
auto named(const char* op, R (*fn)(Args...)) {
  return [op, fn](Args... args) -> R {
    const std::string hint = "; use a smaller batch or input";
    try {
      return fn(std::forward<Args>(args)...);
    } catch (const py::error_already_set& e) {
      if (!e.matches(PyExc_MemoryError)) throw;
      raise_memory_error(std::string(op) + ": " + py::str(e.value()).cast<std::string>() + hint);
    } catch (const tgc::OutOfMemory& e) {
      raise_memory_error(std::string(op) + ": " + e.what() + hint);
    } catch (const std::bad_alloc&) {
      raise_memory_error(std::string(op) + ": out of memory" + hint);
    }
  };
}

}  // namespace tgc_bind
