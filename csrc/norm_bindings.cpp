// Bindings of the normalisation and loss kernels (src/norm.h, src/softmax.h):
// tinygrad_course._C.batch_norm_train, batch_norm_eval, batch_norm_grad,
// layer_norm, layer_norm_grad, cross_entropy, cross_entropy_grad. Same contract
// as the methods of NumpyBackend (python/tinygrad_course/backend/numpy_backend.py).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "norm.h"
#include "softmax.h"

namespace py = pybind11;
using namespace tgc_bind;

namespace {

using Shape = std::vector<py::ssize_t>;

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

std::string dims_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// An optional array argument: None, or an array with x's dtype (TypeError otherwise).
py::object optional_array(const char* op, const char* name, const py::array& x,
                          const py::object& obj) {
  if (obj.is_none()) return obj;
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(op) + ": " + name + " must be a numpy array or None, got " +
                         py::str(py::type::handle_of(obj)).cast<std::string>());
  }
  require_float_dtype(op, x, py::reinterpret_borrow<py::array>(obj));
  return obj;
}

void require_shape(const char* op, const char* name, const py::handle& a, const Shape& expected,
                   const py::array& x) {
  if (a.is_none()) return;
  const auto arr = py::reinterpret_borrow<py::array>(a);
  if (shape_of(arr) != expected) {
    throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(arr) +
                          ", expected " + dims_str(expected) + " for input " + shape_str(x));
  }
}

void require_same_shape(const char* op, const char* name, const py::array& a, const py::array& x) {
  if (shape_of(a) != shape_of(x)) {
    throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(a) +
                          ", expected the input's shape " + shape_str(x));
  }
}

// An optional array argument made C-contiguous: `data` is nullptr for None. (A
// default-constructed py::array_t is an empty array, not a null handle, so the
// presence is kept explicitly.)
template <typename T>
struct Optional {
  py::array_t<T, py::array::c_style> array;
  const T* data = nullptr;
};

template <typename T>
Optional<T> optional_contiguous(const py::object& obj) {
  Optional<T> r;
  if (!obj.is_none()) {
    r.array = contiguous<T>(py::reinterpret_borrow<py::array>(obj));
    r.data = r.array.data();
  }
  return r;
}

// eps: finite and >= 0 (a negative or NaN eps makes every output NaN without
// saying why); > 0 when the statistics are the batch's (as PyTorch requires:
// a constant channel would divide 0 by 0).
void check_eps(const char* op, double eps, bool positive = false) {
  if (!(eps >= 0.0 && eps <= 1e300) || (positive && eps == 0.0)) {
    throw py::value_error(std::string(op) + ": eps must be a finite number " + (positive ? "> 0" : ">= 0") +
                          ", got " + py::repr(py::float_(eps)).cast<std::string>());
  }
}

// --- batch norm --------------------------------------------------------------------------

struct BnDims {
  std::int64_t n, c, s;
};

BnDims bn_dims(const char* op, const py::array& x) {
  if (x.ndim() < 2) {
    throw py::value_error(std::string(op) + ": expected an input (N, C) or (N, C, ...), got shape " +
                          shape_str(x));
  }
  std::int64_t s = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) s *= x.shape(d);
  return {x.shape(0), x.shape(1), s};
}

template <typename T>
py::tuple bn_train_impl(const py::array& x_in, const py::object& g_in, const py::object& b_in,
                        double eps, const BnDims& d) {
  const auto x = contiguous<T>(x_in);
  const auto gamma = optional_contiguous<T>(g_in);
  const auto beta = optional_contiguous<T>(b_in);
  py::array_t<T> y(shape_of(x_in));
  py::array_t<T> mean(d.c), var(d.c);
  const T* px = x.data();
  const T* pg = gamma.data;
  const T* pb = beta.data;
  T* py_ = y.mutable_data();
  T* pm = mean.mutable_data();
  T* pv = var.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::batch_norm_train<T>(px, d.n, d.c, d.s, pg, pb, eps, py_, pm, pv);
  }
  return py::make_tuple(std::move(y), std::move(mean), std::move(var));
}

py::tuple batch_norm_train(const py::array& x, const py::object& gamma, const py::object& beta,
                           double eps) {
  const char* op = "batch_norm_train";
  check_eps(op, eps, true);
  const bool f32 = require_float_dtype(op, x);
  const BnDims d = bn_dims(op, x);
  const Shape ch{d.c};
  require_shape(op, "gamma", optional_array(op, "gamma", x, gamma), ch, x);
  require_shape(op, "beta", optional_array(op, "beta", x, beta), ch, x);
  return f32 ? bn_train_impl<float>(x, gamma, beta, eps, d)
             : bn_train_impl<double>(x, gamma, beta, eps, d);
}

template <typename T>
py::array bn_eval_impl(const py::array& x_in, const py::array& m_in, const py::array& v_in,
                       const py::object& g_in, const py::object& b_in, double eps,
                       const BnDims& d) {
  const auto x = contiguous<T>(x_in);
  const auto mean = contiguous<T>(m_in);
  const auto var = contiguous<T>(v_in);
  const auto gamma = optional_contiguous<T>(g_in);
  const auto beta = optional_contiguous<T>(b_in);
  py::array_t<T> y(shape_of(x_in));
  const T* px = x.data();
  const T* pm = mean.data();
  const T* pv = var.data();
  const T* pg = gamma.data;
  const T* pb = beta.data;
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::batch_norm_apply<T>(px, d.n, d.c, d.s, pm, pv, pg, pb, eps, py_);
  }
  return std::move(y);
}

py::array batch_norm_eval(const py::array& x, const py::array& mean, const py::array& var,
                          const py::object& gamma, const py::object& beta, double eps) {
  const char* op = "batch_norm_eval";
  check_eps(op, eps);
  const bool f32 = require_float_dtype(op, x, mean, var);
  const BnDims d = bn_dims(op, x);
  const Shape ch{d.c};
  require_shape(op, "mean", mean, ch, x);
  require_shape(op, "var", var, ch, x);
  require_shape(op, "gamma", optional_array(op, "gamma", x, gamma), ch, x);
  require_shape(op, "beta", optional_array(op, "beta", x, beta), ch, x);
  return f32 ? bn_eval_impl<float>(x, mean, var, gamma, beta, eps, d)
             : bn_eval_impl<double>(x, mean, var, gamma, beta, eps, d);
}

template <typename T>
py::tuple bn_grad_impl(const py::array& gy_in, const py::array& x_in, const py::array& m_in,
                       const py::array& i_in, const py::object& g_in, bool training,
                       const BnDims& d) {
  const auto gy = contiguous<T>(gy_in);
  const auto x = contiguous<T>(x_in);
  const auto mean = contiguous<T>(m_in);
  const auto invstd = contiguous<T>(i_in);
  const auto gamma = optional_contiguous<T>(g_in);
  py::array_t<T> gx(shape_of(x_in));
  py::array_t<T> ggamma(d.c), gbeta(d.c);
  const T* pgy = gy.data();
  const T* px = x.data();
  const T* pm = mean.data();
  const T* pi = invstd.data();
  const T* pg = gamma.data;
  T* pgx = gx.mutable_data();
  T* pgg = ggamma.mutable_data();
  T* pgb = gbeta.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::batch_norm_backward<T>(pgy, px, d.n, d.c, d.s, pm, pi, pg, training, pgx, pgg, pgb);
  }
  return py::make_tuple(std::move(gx), std::move(ggamma), std::move(gbeta));
}

py::tuple batch_norm_grad(const py::array& gy, const py::array& x, const py::array& mean,
                          const py::array& invstd, const py::object& gamma, bool training) {
  const char* op = "batch_norm_grad";
  const bool f32 = require_float_dtype(op, x, gy, mean, invstd);
  const BnDims d = bn_dims(op, x);
  require_same_shape(op, "gradient", gy, x);
  const Shape ch{d.c};
  require_shape(op, "mean", mean, ch, x);
  require_shape(op, "invstd", invstd, ch, x);
  require_shape(op, "gamma", optional_array(op, "gamma", x, gamma), ch, x);
  return f32 ? bn_grad_impl<float>(gy, x, mean, invstd, gamma, training, d)
             : bn_grad_impl<double>(gy, x, mean, invstd, gamma, training, d);
}

// --- layer norm --------------------------------------------------------------------------

struct LnDims {
  std::int64_t rows, m;
  Shape lead, norm, stats;  // x.shape[:-ndim], x.shape[-ndim:], lead + (1,) * ndim
};

LnDims ln_dims(const char* op, const py::array& x, const py::handle& ndim_arg) {
  if (x.ndim() < 1) {
    throw py::value_error(std::string(op) + ": expected an input with at least one axis, got shape " +
                          shape_str(x));
  }
  const std::string what = "ndim (the number of normalised trailing axes of the input " + shape_str(x) + ")";
  const i64 ndim = int_arg(op, what.c_str(), ndim_arg, 1, x.ndim());
  LnDims d{1, 1, {}, {}, {}};
  const py::ssize_t k = x.ndim() - ndim;
  for (py::ssize_t i = 0; i < x.ndim(); ++i) {
    if (i < k) {
      d.rows *= x.shape(i);
      d.lead.push_back(x.shape(i));
      d.stats.push_back(x.shape(i));
    } else {
      d.m *= x.shape(i);
      d.norm.push_back(x.shape(i));
      d.stats.push_back(1);
    }
  }
  return d;
}

// mean / invstd of layer_norm_grad: the keepdims shape layer_norm returns, or the leading shape.
void require_stats_shape(const char* op, const char* name, const py::array& a, const LnDims& d,
                         const py::array& x) {
  const Shape s = shape_of(a);
  if (s != d.stats && s != d.lead) {
    throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(a) +
                          ", expected " + dims_str(d.stats) + " for input " + shape_str(x));
  }
}

template <typename T>
py::tuple ln_impl(const py::array& x_in, const py::object& g_in, const py::object& b_in,
                  double eps, const LnDims& d) {
  const auto x = contiguous<T>(x_in);
  const auto gamma = optional_contiguous<T>(g_in);
  const auto beta = optional_contiguous<T>(b_in);
  py::array_t<T> y(shape_of(x_in));
  py::array_t<T> mean(d.stats), invstd(d.stats);
  const T* px = x.data();
  const T* pg = gamma.data;
  const T* pb = beta.data;
  T* py_ = y.mutable_data();
  T* pm = mean.mutable_data();
  T* pi = invstd.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::layer_norm_forward<T>(px, d.rows, d.m, pg, pb, eps, py_, pm, pi);
  }
  return py::make_tuple(std::move(y), std::move(mean), std::move(invstd));
}

py::tuple layer_norm(const py::array& x, const py::object& ndim, const py::object& gamma, const py::object& beta,
                     double eps) {
  const char* op = "layer_norm";
  check_eps(op, eps);
  const bool f32 = require_float_dtype(op, x);
  const LnDims d = ln_dims(op, x, ndim);
  require_shape(op, "gamma", optional_array(op, "gamma", x, gamma), d.norm, x);
  require_shape(op, "beta", optional_array(op, "beta", x, beta), d.norm, x);
  return f32 ? ln_impl<float>(x, gamma, beta, eps, d) : ln_impl<double>(x, gamma, beta, eps, d);
}

template <typename T>
py::tuple ln_grad_impl(const py::array& gy_in, const py::array& x_in, const py::array& m_in,
                       const py::array& i_in, const py::object& g_in, const LnDims& d) {
  const auto gy = contiguous<T>(gy_in);
  const auto x = contiguous<T>(x_in);
  const auto mean = contiguous<T>(m_in);
  const auto invstd = contiguous<T>(i_in);
  const auto gamma = optional_contiguous<T>(g_in);
  py::array_t<T> gx(shape_of(x_in));
  py::array_t<T> ggamma(d.norm), gbeta(d.norm);
  const T* pgy = gy.data();
  const T* px = x.data();
  const T* pm = mean.data();
  const T* pi = invstd.data();
  const T* pg = gamma.data;
  T* pgx = gx.mutable_data();
  T* pgg = ggamma.mutable_data();
  T* pgb = gbeta.mutable_data();
  {
    py::gil_scoped_release release;
    tgc::layer_norm_backward<T>(pgy, px, d.rows, d.m, pm, pi, pg, pgx, pgg, pgb);
  }
  return py::make_tuple(std::move(gx), std::move(ggamma), std::move(gbeta));
}

py::tuple layer_norm_grad(const py::array& gy, const py::array& x, const py::array& mean,
                          const py::array& invstd, const py::object& gamma, const py::object& ndim) {
  const char* op = "layer_norm_grad";
  const bool f32 = require_float_dtype(op, x, gy, mean, invstd);
  const LnDims d = ln_dims(op, x, ndim);
  require_same_shape(op, "gradient", gy, x);
  require_stats_shape(op, "mean", mean, d, x);
  require_stats_shape(op, "invstd", invstd, d, x);
  require_shape(op, "gamma", optional_array(op, "gamma", x, gamma), d.norm, x);
  return f32 ? ln_grad_impl<float>(gy, x, mean, invstd, gamma, d)
             : ln_grad_impl<double>(gy, x, mean, invstd, gamma, d);
}

// --- cross-entropy -----------------------------------------------------------------------

void check_targets(const char* op, const py::array& target, py::ssize_t n, const py::array& x) {
  if (!py::isinstance<py::array_t<std::int64_t>>(target)) {
    throw py::type_error(std::string(op) + ": target must hold int64 class indices, got " +
                         dtype_str(target));
  }
  if (target.ndim() != 1 || target.shape(0) != n) {
    throw py::value_error(std::string(op) + ": target has shape " + shape_str(target) +
                          ", expected (" + std::to_string(n) + ",) for input " + shape_str(x));
  }
}

void check_smoothing(const char* op, double e) {
  if (!(e >= 0.0 && e <= 1.0)) {
    throw py::value_error(std::string(op) + ": label_smoothing must be in [0, 1], got " +
                          std::to_string(e));
  }
}

[[noreturn]] void bad_target(const char* op, std::int64_t row, std::int64_t value,
                             const py::array& x) {
  throw py::index_error(std::string(op) + ": target[" + std::to_string(row) + "] = " +
                        std::to_string(value) + " is out of range for " +
                        std::to_string(x.shape(1)) + " classes (input " + shape_str(x) + ")");
}

template <typename T>
py::tuple ce_impl(const py::array& x_in, const py::array& t_in, double e) {
  const auto x = contiguous<T>(x_in);
  const auto t = contiguous<std::int64_t>(t_in);
  const std::int64_t n = x.shape(0), c = x.shape(1);
  py::array_t<T> loss(n), probs({n, c});
  const T* px = x.data();
  const std::int64_t* pt = t.data();
  T* pl = loss.mutable_data();
  T* pp = probs.mutable_data();
  std::int64_t bad;
  {
    py::gil_scoped_release release;
    bad = tgc::cross_entropy_forward<T>(px, pt, n, c, e, pl, pp);
  }
  if (bad >= 0) bad_target("cross_entropy", bad, pt[bad], x_in);
  return py::make_tuple(std::move(loss), std::move(probs));
}

py::tuple cross_entropy(const py::array& logits, const py::array& target, double label_smoothing) {
  const char* op = "cross_entropy";
  const bool f32 = require_float_dtype(op, logits);
  if (logits.ndim() != 2) {
    throw py::value_error(std::string(op) + ": expected logits of shape (N, C), got " +
                          shape_str(logits));
  }
  check_targets(op, target, logits.shape(0), logits);
  check_smoothing(op, label_smoothing);
  return f32 ? ce_impl<float>(logits, target, label_smoothing)
             : ce_impl<double>(logits, target, label_smoothing);
}

template <typename T>
py::array ce_grad_impl(const py::array& g_in, const py::array& p_in, const py::array& t_in,
                       double e) {
  const auto g = contiguous<T>(g_in);
  const auto p = contiguous<T>(p_in);
  const auto t = contiguous<std::int64_t>(t_in);
  const std::int64_t n = p.shape(0), c = p.shape(1);
  py::array_t<T> grad({n, c});
  const T* pg = g.data();
  const T* pp = p.data();
  const std::int64_t* pt = t.data();
  T* out = grad.mutable_data();
  std::int64_t bad;
  {
    py::gil_scoped_release release;
    bad = tgc::cross_entropy_backward<T>(pg, pp, pt, n, c, e, out);
  }
  if (bad >= 0) bad_target("cross_entropy_grad", bad, pt[bad], p_in);
  return std::move(grad);
}

py::array cross_entropy_grad(const py::array& g, const py::array& probs, const py::array& target,
                             double label_smoothing) {
  const char* op = "cross_entropy_grad";
  const bool f32 = require_float_dtype(op, probs, g);
  if (probs.ndim() != 2) {
    throw py::value_error(std::string(op) + ": expected probs of shape (N, C), got " +
                          shape_str(probs));
  }
  if (g.ndim() != 1 || g.shape(0) != probs.shape(0)) {
    throw py::value_error(std::string(op) + ": gradient has shape " + shape_str(g) +
                          ", expected (" + std::to_string(probs.shape(0)) + ",) for probs " +
                          shape_str(probs));
  }
  check_targets(op, target, probs.shape(0), probs);
  check_smoothing(op, label_smoothing);
  return f32 ? ce_grad_impl<float>(g, probs, target, label_smoothing)
             : ce_grad_impl<double>(g, probs, target, label_smoothing);
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("batch_norm_train", named("batch_norm_train", &batch_norm_train), py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("eps"),
        R"doc(Batch norm with the batch's statistics over every axis but 1 of an (N, C) or
(N, C, ...) float32/float64 array. gamma/beta: (C,) arrays or None. Returns
(y, mean, var) with the biased variance. The GIL is released.)doc");
  m.def("batch_norm_eval", named("batch_norm_eval", &batch_norm_eval), py::arg("x"), py::arg("mean"), py::arg("var"),
        py::arg("gamma"), py::arg("beta"), py::arg("eps"),
        R"doc(Batch norm with given per-channel statistics: (x - mean) / sqrt(var + eps) * gamma + beta.)doc");
  m.def("batch_norm_grad", named("batch_norm_grad", &batch_norm_grad), py::arg("gy"), py::arg("x"), py::arg("mean"),
        py::arg("invstd"), py::arg("gamma"), py::arg("training"),
        R"doc(Gradients (gx, ggamma, gbeta) of batch norm; with training the statistics are
those of the batch (they depend on x), otherwise constants.)doc");
  m.def("layer_norm", named("layer_norm", &layer_norm), py::arg("x"), py::arg("ndim"), py::arg("gamma"),
        py::arg("beta"), py::arg("eps"),
        R"doc(Layer norm over the last ndim axes. Returns (y, mean, invstd); mean and invstd
keep the normalised axes as size 1.)doc");
  m.def("layer_norm_grad", named("layer_norm_grad", &layer_norm_grad), py::arg("gy"), py::arg("x"), py::arg("mean"),
        py::arg("invstd"), py::arg("gamma"), py::arg("ndim"),
        R"doc(Gradients (gx, ggamma, gbeta) of layer norm over the last ndim axes.)doc");
  m.def("cross_entropy", named("cross_entropy", &cross_entropy), py::arg("logits"), py::arg("target"),
        py::arg("label_smoothing"),
        R"doc(Fused softmax cross-entropy of (N, C) logits and int64 class indices (N,).
Returns (loss (N,), probs (N, C)); IndexError names a target outside [0, C).)doc");
  m.def("cross_entropy_grad", named("cross_entropy_grad", &cross_entropy_grad), py::arg("g"), py::arg("probs"),
        py::arg("target"), py::arg("label_smoothing"),
        R"doc(g[:, None] * (probs - ((1 - e) * onehot(target) + e / C)).)doc");
}
