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

#include "tgc_build_info.h"

namespace py = pybind11;

namespace {

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

// Each kernel family binds itself from its own file (csrc/*_bindings.cpp).
void bind_matmul(py::module_& m);
void bind_pool(py::module_& m);
void bind_norm(py::module_& m);
void bind_conv(py::module_& m);
void bind_elementwise(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "tinygrad_course native C++ kernels";
  m.attr("__version__") = TGC_VERSION;
  bind_matmul(m);
  bind_pool(m);
  bind_norm(m);
  bind_conv(m);
  bind_elementwise(m);

  m.def("openmp_enabled", &openmp_enabled, "Whether the kernels were built with OpenMP.");
  m.def("num_threads", &num_threads,
        "Number of threads the kernels will use (omp_get_max_threads(), or 1 without OpenMP).");
  m.def("build_info", &build_info,
        "Dict describing how the extension was built (compiler, flags, options).");
}
