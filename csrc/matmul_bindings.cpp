// Bindings of the GEMM kernels: tinygrad_course._C.matmul.
#include <cstdint>
#include <vector>

#include "common.h"
#include "matmul.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

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

}  // namespace

void bind_matmul(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"),
        R"doc(Matrix product of two float32 or two float64 numpy arrays.

a, b are 2-D (M, K) @ (K, N) -> (M, N), or 3-D batched
(batch, M, K) @ (batch, K, N) -> (batch, M, N). Both must have the same
dtype (no implicit conversion: TypeError otherwise); non-contiguous inputs
are copied to C order once. Returns a new C-contiguous array. The GIL is
released while the kernel runs.)doc");
}
