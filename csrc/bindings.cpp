// pybind11 bindings for the tinygrad_course C++ kernels (module tinygrad_course._C).
//
// This file only validates arguments, allocates outputs and converts between
// numpy arrays and raw pointers; the kernels themselves live in src/ and know
// nothing about Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "isa.h"
#include "memory.h"
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
  d["isas_compiled"] = TGC_ISAS_COMPILED;
  d["isa"] = tgc::isa_name(tgc::active_isa());
  d["simd"] = tgc::isa_simd(tgc::active_isa());
  return d;
}

std::string isa() { return tgc::isa_name(tgc::active_isa()); }

// Every ISA this build knows of: compiled in, supported by this CPU, its vector code.
py::dict isas() {
  py::dict d;
  for (int i = 0; i < tgc::kIsaCount; ++i) {
    const auto isa = static_cast<tgc::Isa>(i);
    if (!tgc::isa_compiled(isa)) continue;
    py::dict e;
    e["available"] = tgc::isa_available(isa);
    e["simd"] = tgc::isa_simd(isa);
    d[tgc::isa_name(isa)] = e;
  }
  return d;
}

void set_isa(const std::string& name) {
  tgc::Isa isa;
  std::string known, usable;
  for (int i = 0; i < tgc::kIsaCount; ++i) {
    const auto each = static_cast<tgc::Isa>(i);
    if (!tgc::isa_compiled(each)) continue;
    known += (known.empty() ? "" : ", ") + std::string(tgc::isa_name(each));
    if (tgc::isa_available(each)) usable += (usable.empty() ? "" : ", ") + std::string(tgc::isa_name(each));
  }
  if (!tgc::isa_from_name(name.c_str(), &isa) || !tgc::isa_compiled(isa)) {
    throw py::value_error("ISA '" + name + "' is not compiled into this build (it has: " + known +
                          "; this CPU can run: " + usable + ")");
  }
  if (!tgc::set_isa(isa)) {
    throw py::value_error("ISA '" + name + "' is compiled in but this CPU does not support it "
                          "(it can run: " + usable + ")");
  }
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
  // TINYGRAD_COURSE_ISA=baseline|avx2|avx512|neon forces an ISA (a lower one, for tests and
  // benchmarks). A request this build or CPU cannot honour fails the import with a message
  // that names the variable (pybind11 turns any error here into an ImportError; the package's
  // __init__ imports _C first when the variable is set, so the error is never swallowed).
  if (const char* want = std::getenv("TINYGRAD_COURSE_ISA"); want && *want) {
    try {
      set_isa(want);
    } catch (const py::value_error& e) {
      throw std::runtime_error(std::string("TINYGRAD_COURSE_ISA=") + want + ": " + e.what() +
                               "; unset it to use the best one");
    }
  }
  m.attr("__version__") = TGC_VERSION;
  bind_matmul(m);
  bind_pool(m);
  bind_norm(m);
  bind_conv(m);
  bind_elementwise(m);

  m.def("openmp_enabled", &openmp_enabled, "Whether the kernels were built with OpenMP.");
  m.def("num_threads", &num_threads,
        "Number of threads the kernels will use (omp_get_max_threads(), or 1 without OpenMP).");
  m.def("isa", &isa, "The instruction set the kernels run with now (e.g. 'avx2').");
  m.def("isas", &isas,
        "The ISAs compiled into this build: {name: {'available': this CPU runs it, 'simd': its vector code}}.");
  m.def("set_isa", &set_isa, py::arg("name"),
        "Run the kernels with another compiled ISA this CPU supports (ValueError otherwise). "
        "Not thread-safe against kernels running in other threads of the same call.");
  m.def("best_isa", []() { return std::string(tgc::isa_name(tgc::best_isa())); },
        "The ISA chosen at import: the best one compiled in that this CPU supports.");
  m.def("build_info", &build_info,
        "Dict describing how the extension was built (compiler, flags, options).");
  m.def("_fail_scratch_alloc", &tgc::scratch_fail_after, py::arg("after"),
        "Testing only: after `after` more scratch allocations of the kernels succeed, every\n"
        "one fails (the kernel then raises MemoryError) until called again with -1.");
}
