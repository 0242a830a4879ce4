// pybind11 bindings for the tinygrad_course C++ kernels (module tinygrad_course._C).
//
// This file only validates arguments, allocates outputs and converts between
// numpy arrays and raw pointers; the kernels themselves live in src/ and know
// nothing about Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "matmul.h"
#include "tgc_build_info.h"

namespace py = pybind11;

namespace {

// Formats a shape like Python does for tuples: (2, 3), (5,), ().
std::string shape_str(const py::array& a) {
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

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

template <typename T>
py::array matmul_impl(const py::array& a_in, const py::array& b_in) {
  // Same dtype is guaranteed by the caller, so this never converts the dtype;
  // it only copies when the input is not already C-contiguous.
  using carray = py::array_t<T, py::array::c_style>;
  const carray a = carray::ensure(a_in);
  const carray b = carray::ensure(b_in);
  if (!a || !b) throw py::error_already_set();

  const bool batched = a.ndim() == 3;
  const std::int64_t batch = batched ? a.shape(0) : 1;
  const std::int64_t m = a.shape(a.ndim() - 2);
  const std::int64_t k = a.shape(a.ndim() - 1);
  const std::int64_t n = b.shape(b.ndim() - 1);

  std::vector<py::ssize_t> out_shape;
  if (batched) out_shape.push_back(batch);
  out_shape.push_back(m);
  out_shape.push_back(n);
  py::array_t<T> out(out_shape);

  const T* pa = a.data();
  const T* pb = b.data();
  T* pc = out.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::matmul_batched<T>(pa, pb, pc, batch, m, k, n);
  }
  return std::move(out);
}

py::array matmul(const py::array& a, const py::array& b) {
  const bool a_f32 = py::isinstance<py::array_t<float>>(a);
  const bool a_f64 = py::isinstance<py::array_t<double>>(a);
  const bool b_f32 = py::isinstance<py::array_t<float>>(b);
  const bool b_f64 = py::isinstance<py::array_t<double>>(b);
  if (!((a_f32 && b_f32) || (a_f64 && b_f64))) {
    throw py::type_error("matmul: both operands must be float32 or both float64, got " +
                         dtype_str(a) + " and " + dtype_str(b));
  }

  if (a.ndim() < 2 || a.ndim() > 3 || b.ndim() != a.ndim()) {
    throw py::value_error(
        "matmul: operands must both be 2-D (M, K) @ (K, N) or both 3-D "
        "(batch, M, K) @ (batch, K, N), got shapes " +
        shape_str(a) + " and " + shape_str(b));
  }
  if (a.ndim() == 3 && a.shape(0) != b.shape(0)) {
    throw py::value_error("matmul: batch sizes differ for shapes " + shape_str(a) + " and " +
                          shape_str(b) + ": " + std::to_string(a.shape(0)) +
                          " != " + std::to_string(b.shape(0)));
  }
  const py::ssize_t ka = a.shape(a.ndim() - 1);
  const py::ssize_t kb = b.shape(b.ndim() - 2);
  if (ka != kb) {
    throw py::value_error("matmul: shapes " + shape_str(a) + " and " + shape_str(b) +
                          " are not aligned: " + std::to_string(ka) + " != " +
                          std::to_string(kb));
  }

  return a_f32 ? matmul_impl<float>(a, b) : matmul_impl<double>(a, b);
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

py::dict build_info() {
  py::dict d;
  d["version"] = TGC_VERSION;
  d["build_type"] = TGC_BUILD_TYPE;
  d["compiler"] = std::string(TGC_CXX_COMPILER_ID) + " " + TGC_CXX_COMPILER_VERSION;
  d["cxx_flags"] = TGC_CXX_FLAGS;
  d["cxx_standard"] = static_cast<long>(__cplusplus);
  d["system_processor"] = TGC_SYSTEM_PROCESSOR;
  d["native_arch_option"] = static_cast<bool>(TGC_OPT_NATIVE_ARCH);
  d["march_native"] = static_cast<bool>(TGC_MARCH_NATIVE_APPLIED);
  d["sanitize"] = static_cast<bool>(TGC_OPT_SANITIZE);
  d["openmp"] = openmp_enabled();
  d["num_threads"] = num_threads();
  d["pybind11_version"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                          std::to_string(PYBIND11_VERSION_MINOR) + "." +
                          std::to_string(PYBIND11_VERSION_PATCH);
#if defined(__AVX512F__)
  d["simd"] = "avx512";
#elif defined(__AVX2__)
  d["simd"] = "avx2";
#elif defined(__AVX__)
  d["simd"] = "avx";
#elif defined(__SSE2__) || defined(_M_X64)
  d["simd"] = "sse2";
#elif defined(__ARM_NEON)
  d["simd"] = "neon";
#else
  d["simd"] = "none";
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tinygrad_course native C++ kernels";
  m.attr("__version__") = TGC_VERSION;

  m.def("matmul", &matmul, py::arg("a"), py::arg("b"),
        R"doc(Matrix product of two float32 or two float64 numpy arrays.

a, b are 2-D (M, K) @ (K, N) -> (M, N), or 3-D batched
(batch, M, K) @ (batch, K, N) -> (batch, M, N). Both must have the same
dtype (no implicit conversion: TypeError otherwise); non-contiguous inputs
are copied to C order once. Returns a new C-contiguous array. The GIL is
released while the kernel runs.)doc");
  m.def("openmp_enabled", &openmp_enabled, "Whether the kernels were built with OpenMP.");
  m.def("num_threads", &num_threads,
        "Number of threads the kernels will use (omp_get_max_threads(), or 1 without OpenMP).");
  m.def("build_info", &build_info,
        "Dict describing how the extension was built (compiler, flags, options).");
}
