// Bindings of the GEMM kernels: tinygrad_course._C.matmul and _C.gemm.
//
// Operands are passed to the kernels without copying whenever their last two
// dimensions form a row-major matrix (unit column stride, any row stride) or
// the transpose of one (unit row stride: e.g. `w.T` of a C-contiguous `w`, or
// np.swapaxes(x, -1, -2) of a C-contiguous batch); the latter is handed to
// tgc::gemm as a transposed operand (its packing absorbs the transpose). Any
// batch stride works (including 0, from np.broadcast_to). Other layouts
// (e.g. steps along both axes, negative strides, misaligned data) are copied
// to C order once.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "common.h"
#include "gemm.h"
#include "isa.h"
#include "matmul.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

// How the kernels read one operand: the matrix of the last two dimensions,
// element (i, j) at ptr[i * ld + j] (trans == false) or ptr[j * ld + i]
// (trans == true), batch entry b starting at ptr + b * batch_stride.
template <typename T>
struct MatrixView {
  const T* ptr = nullptr;
  bool trans = false;
  std::int64_t ld = 1;
  std::int64_t batch_stride = 0;
};

// Describes `x` (2-D or 3-D) as a MatrixView without copying, if its strides allow.
template <typename T>
std::optional<MatrixView<T>> describe(const py::array& x) {
  constexpr py::ssize_t item = sizeof(T);
  if (!(x.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) return std::nullopt;
  const py::ssize_t nd = x.ndim();
  const py::ssize_t r = x.shape(nd - 2), c = x.shape(nd - 1);
  const py::ssize_t sr = x.strides(nd - 2), sc = x.strides(nd - 1);

  MatrixView<T> v;
  v.ptr = static_cast<const T*>(x.data());
  if (x.size() == 0) {  // nothing is read (numpy gives empty arrays arbitrary strides)
    v.ld = std::max<py::ssize_t>(c, 1);
    return v;
  }
  if (nd == 3 && x.shape(0) > 1) {
    if (x.strides(0) % item != 0) return std::nullopt;
    v.batch_stride = x.strides(0) / item;
  }
  // Row-major: unit column stride, row stride a multiple of the item size, rows not overlapping.
  if ((c == 1 || sc == item) && (r == 1 || (sr % item == 0 && sr / item >= c))) {
    v.trans = false;
    v.ld = r == 1 ? c : sr / item;
    return v;
  }
  // Transposed row-major (column-major): unit row stride.
  if ((r == 1 || sr == item) && (c == 1 || (sc % item == 0 && sc / item >= r))) {
    v.trans = true;
    v.ld = c == 1 ? r : sc / item;
    return v;
  }
  return std::nullopt;
}

// A view of `x` the kernels can read: `x` itself, or a C-order copy kept in `keep`.
template <typename T>
MatrixView<T> view_or_copy(const py::array& x, py::array& keep) {
  if (auto v = describe<T>(x)) {
    keep = x;
    return *v;
  }
  // An aligned, C-contiguous copy (what np.ascontiguousarray gives, but also
  // for the rare contiguous-but-misaligned array, which describe() rejects).
  auto& api = py::detail::npy_api::get();
  PyObject* copy = api.PyArray_FromAny_(
      x.ptr(), py::dtype::of<T>().release().ptr(), 0, 0,
      py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
          py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_,
      nullptr);
  if (!copy) throw py::error_already_set();  // numpy's MemoryError
  keep = py::reinterpret_steal<py::array>(copy);
  auto v = describe<T>(keep);
  if (!v) throw std::logic_error("matmul: a C-contiguous copy must be a valid matrix view");
  return *v;
}

template <typename T>
py::array matmul_impl(const py::array& a_in, const py::array& b_in) {
  // Same dtype is guaranteed by the caller, so this never converts the dtype.
  py::array a_keep, b_keep;
  const MatrixView<T> a = view_or_copy<T>(a_in, a_keep);
  const MatrixView<T> b = view_or_copy<T>(b_in, b_keep);

  const bool batched = a_in.ndim() == 3;
  const std::int64_t batch = batched ? a_in.shape(0) : 1;
  const std::int64_t m = a_in.shape(a_in.ndim() - 2);
  const std::int64_t k = a_in.shape(a_in.ndim() - 1);
  const std::int64_t n = b_in.shape(b_in.ndim() - 1);

  std::vector<py::ssize_t> out_shape;
  if (batched) out_shape.push_back(batch);
  out_shape.push_back(m);
  out_shape.push_back(n);
  py::array_t<T> out(out_shape);

  T* pc = out.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::matmul_batched_strided<T>(a.trans, b.trans, batch, m, n, k, a.ptr, a.ld, a.batch_stride,
                                   b.ptr, b.ld, b.batch_stride, pc);
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

// ---------------------------------------------------------------------------
// _C.gemm: the BLAS-style kernel itself, 2-D only.
// ---------------------------------------------------------------------------

// Whether the bytes two arrays can reach overlap (a bounds test: strided views
// that interleave without sharing an element count as overlapping).
bool may_overlap(const py::array& x, const py::array& y) {
  if (x.size() == 0 || y.size() == 0) return false;
  auto extent = [](const py::array& a) {
    auto lo = reinterpret_cast<std::uintptr_t>(a.data()), hi = lo;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
      const py::ssize_t off = (a.shape(d) - 1) * a.strides(d);
      (off < 0 ? lo : hi) += static_cast<std::uintptr_t>(off);  // unsigned wrap-around adds a negative offset
    }
    return std::make_pair(lo, hi + static_cast<std::uintptr_t>(a.itemsize()));
  };
  const auto ex = extent(x), ey = extent(y);
  return ex.first < ey.second && ey.first < ex.second;
}

// An operand that overlaps the output c is read from a copy: the kernel writes
// c while it still reads a and b.
py::array unaliased(const py::array& operand, const std::optional<py::array>& c) {
  return c && may_overlap(operand, *c) ? py::array(operand.attr("copy")()) : operand;
}

template <typename T>
py::array gemm_impl(const py::array& a_arg, const py::array& b_arg, const std::optional<py::array>& c_in,
                    double alpha, double beta, bool trans_a, bool trans_b) {
  const py::array a_in = unaliased(a_arg, c_in), b_in = unaliased(b_arg, c_in);
  py::array a_keep, b_keep;
  const MatrixView<T> a = view_or_copy<T>(a_in, a_keep);
  const MatrixView<T> b = view_or_copy<T>(b_in, b_keep);
  // op(a) = a or a.T; a itself may already be stored transposed.
  const bool ta = a.trans != trans_a;
  const bool tb = b.trans != trans_b;
  const std::int64_t m = trans_a ? a_in.shape(1) : a_in.shape(0);
  const std::int64_t k = trans_a ? a_in.shape(0) : a_in.shape(1);
  const std::int64_t n = trans_b ? b_in.shape(0) : b_in.shape(1);

  py::array out;
  T* pc = nullptr;
  std::int64_t ldc = std::max<std::int64_t>(n, 1);
  T beta_t = static_cast<T>(beta);
  if (c_in) {
    out = *c_in;
    constexpr py::ssize_t item = sizeof(T);
    const py::ssize_t sr = out.strides(0), sc = out.strides(1);
    const bool ok = (out.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) &&
                    (n <= 1 || sc == item) &&
                    (m <= 1 || (sr % item == 0 && sr / item >= n));
    if (!ok) {
      throw py::value_error("gemm: c must have unit column stride and non-overlapping rows, got strides (" +
                            std::to_string(sr) + ", " + std::to_string(sc) + ")");
    }
    if (!out.writeable()) throw py::value_error("gemm: c is read-only; pass a writable array or no c");
    if (m > 1) ldc = sr / item;
    pc = static_cast<T*>(out.mutable_data());  // throws if c is read-only
  } else {
    out = py::array_t<T>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(m),
                                                  static_cast<py::ssize_t>(n)});
    pc = static_cast<T*>(out.mutable_data());
    beta_t = T(0);  // no C to add: it is treated as zeros
  }
  {
    py::gil_scoped_release release;
    tgc::gemm<T>(ta, tb, m, n, k, static_cast<T>(alpha), a.ptr, a.ld, b.ptr, b.ld, beta_t, pc, ldc);
  }
  return out;
}

py::array gemm(const py::array& a, const py::array& b, const std::optional<py::array>& c,
               double alpha, double beta, bool trans_a, bool trans_b) {
  const bool f32 = c ? require_float_dtype("gemm", a, b, *c) : require_float_dtype("gemm", a, b);
  if (a.ndim() != 2 || b.ndim() != 2 || (c && c->ndim() != 2)) {
    throw py::value_error("gemm: a, b (and c) must be 2-D, got shapes " + shape_str(a) + " and " +
                          shape_str(b) + (c ? " and " + shape_str(*c) : std::string()));
  }
  const py::ssize_t m = trans_a ? a.shape(1) : a.shape(0);
  const py::ssize_t ka = trans_a ? a.shape(0) : a.shape(1);
  const py::ssize_t kb = trans_b ? b.shape(1) : b.shape(0);
  const py::ssize_t n = trans_b ? b.shape(0) : b.shape(1);
  if (ka != kb) {
    throw py::value_error("gemm: op(a) and op(b) are not aligned for shapes " + shape_str(a) +
                          " and " + shape_str(b) + " (trans_a=" + (trans_a ? "True" : "False") +
                          ", trans_b=" + (trans_b ? "True" : "False") + "): " +
                          std::to_string(ka) + " != " + std::to_string(kb));
  }
  if (c && (c->shape(0) != m || c->shape(1) != n)) {
    throw py::value_error("gemm: c has shape " + shape_str(*c) + ", expected (" +
                          std::to_string(m) + ", " + std::to_string(n) + ")");
  }
  return f32 ? gemm_impl<float>(a, b, c, alpha, beta, trans_a, trans_b)
             : gemm_impl<double>(a, b, c, alpha, beta, trans_a, trans_b);
}

template <typename T>
py::dict config_dict() {
  const tgc::GemmConfig c = tgc::gemm_config<T>();
  py::dict d;
  d["isa"] = tgc::isa_name(tgc::active_isa());
  d["simd"] = c.simd;
  d["mr"] = c.mr;
  d["nr"] = c.nr;
  d["kc"] = c.kc;
  d["mc"] = c.mc;
  d["nc"] = c.nc;
  return d;
}

py::dict gemm_config() {
  py::dict d;
  d["float32"] = config_dict<float>();
  d["float64"] = config_dict<double>();
  return d;
}

}  // namespace

void bind_matmul(py::module_& m) {
  m.def("matmul", named("matmul", &matmul), py::arg("a"), py::arg("b"),
        R"doc(Matrix product of two float32 or two float64 numpy arrays.

a, b are 2-D (M, K) @ (K, N) -> (M, N), or 3-D batched
(batch, M, K) @ (batch, K, N) -> (batch, M, N). Both must have the same
dtype (no implicit conversion: TypeError otherwise). Inputs whose last two
dimensions are row-major (unit column stride) or transposed row-major (unit
row stride, e.g. ``w.T``) are read in place; other layouts are copied to C
order once. Returns a new C-contiguous array. The GIL is released while the
kernel runs.)doc");
  m.def("gemm", named("gemm", &gemm), py::arg("a"), py::arg("b"), py::arg("c") = py::none(),
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("trans_a") = false,
        py::arg("trans_b") = false,
        R"doc(BLAS-style GEMM: alpha * op(a) @ op(b) + beta * c, 2-D float32/float64.

op(x) is x.T when trans_x is true, else x. Without c, returns a new
(M, N) array (beta is ignored: c counts as zeros). With c (same dtype,
shape (M, N), writable, unit column stride), c is updated in place and
returned; when beta == 0 its old contents are never read (NaN/garbage is
fine). An a or b that overlaps c is copied first. a and b are read in place when row-major or transposed row-major,
else copied once. The GIL is released while the kernel runs.)doc");
  m.def("gemm_config", &gemm_config,
        R"doc(The GEMM block sizes of this build: {"float32": {...}, "float64": {...}},
each with isa (the active ISA, see isa()), simd (its vector code), the micro-tile mr x nr and
the cache blocks kc (depth), mc (rows of A), nc (columns of B).)doc");
}
