"""A kernel support-vector machine trained on the engine (COURSE.md section 1, bonus).

`KernelSVM` solves the soft-margin SVM dual, the problem scikit-learn's SVC (libsvm) solves:

    minimise  D(a) = 1/2 a^T Q a - sum(a),  Q_ij = y_i y_j K(x_i, x_j)
    subject to 0 <= a_i <= C and sum_i a_i y_i = 0,       labels y_i in {-1, +1},

by projected gradient descent: autograd computes the gradient Q a - 1 of D (the quadratic term is
a small custom Function, `HalfQuadraticForm`, whose backward reuses the Q a of its forward: one
matrix-vector product per step), `optim.SGD` with Nesterov momentum takes the step (lr = 1 / the
largest |eigenvalue| of Q unless given), and the iterate is projected back onto the feasible set
(the box and the hyperplane: a bisection on the multiplier of the equality constraint). The decision function is f(x) = sum_j a_j y_j K(x_j, x) + b over the
support vectors (a_j > 0); b follows from the KKT conditions as in libsvm (the mean over the free
support vectors, 0 < a_j < C). The dual stays bounded for kernels that are not positive
semi-definite (sigmoid), where the primal would not.

Kernels (scikit-learn's definitions): linear x.x'; poly (gamma x.x' + coef0)^degree;
sigmoid tanh(gamma x.x' + coef0); rbf exp(-gamma |x - x'|^2). gamma="scale" is
1 / (n_features * X.var()), "auto" is 1 / n_features. The n x n kernel matrix is held in memory,
so this is for course-sized data (a few thousand points).
"""
from __future__ import annotations

import numpy as np

from .. import optim
from ..backend import get_backend
from ..nn.module import Parameter
from ..tensor import Function, Tensor, no_grad

__all__ = ["KernelSVM", "HalfQuadraticForm", "compare_kernels", "largest_eigenvalue", "project_box_hyperplane"]

KERNELS = ("linear", "poly", "sigmoid", "rbf")


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x.detach().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"KernelSVM.{name}: expected a non-empty (n_samples, n_features) array, got shape {x.shape}")
    return x


class HalfQuadraticForm(Function):
    """1/2 a^T Q a for a vector a and a constant symmetric matrix Q; its gradient in a is Q a.

        HalfQuadraticForm.apply(a, q)   # a: Tensor (n,), q: array (n, n)
    """

    def forward(self, a, q):
        self.qa = get_backend(self.device).matmul(q, a[:, None])[:, 0]
        return np.asarray(0.5 * (a @ self.qa), dtype=a.dtype)

    def backward(self, g):
        return g * self.qa, None


def largest_eigenvalue(q: np.ndarray, iters: int = 100) -> float:
    """Largest |eigenvalue| of a symmetric matrix by power iteration: the Lipschitz constant of the
    dual's gradient, whose inverse is the step size of projected gradient descent."""
    v = np.random.default_rng(0).standard_normal(q.shape[0])
    norm = 0.0
    for _ in range(iters):
        w = q @ v
        norm = np.linalg.norm(w)
        if norm == 0:
            return 0.0
        v = w / norm
    return float(norm)


def project_box_hyperplane(v: np.ndarray, y: np.ndarray, c: float, iters: int = 50) -> np.ndarray:
    """Euclidean projection of v onto {0 <= a <= c, y.a = 0} for y in {-1, +1}.

    The projection is clip(v - mu y, 0, c) for the mu that makes y.a = 0; y.a is non-increasing in
    mu, so bisection finds it.
    """
    lo = -(np.abs(v).max() + c)
    hi = -lo
    for _ in range(iters):
        mu = 0.5 * (lo + hi)
        if y @ np.clip(v - mu * y, 0, c) > 0:
            lo = mu
        else:
            hi = mu
    return np.clip(v - 0.5 * (lo + hi) * y, 0, c)


class KernelSVM:
    """Binary soft-margin kernel SVM trained by projected gradient on the dual (see the module docstring).

    kernel: "linear", "poly", "sigmoid" or "rbf"; C: the box bound (larger = less regularisation);
    gamma: "scale", "auto" or a positive float; degree and coef0: for poly and sigmoid;
    epochs: full-batch projected-gradient steps; lr: step size (None: 1 / largest |eigenvalue| of Q);
    momentum: Nesterov momentum of the SGD step; seed: None starts from a = 0 (as libsvm does), an
    int from a seeded random feasible point (only the non-convex sigmoid dual can end elsewhere).
    After fit: classes_, support_ (indices), support_vectors_, dual_coef_ (a_j y_j), intercept_,
    gamma_, objective_ (the dual objective D after each epoch).
    """

    def __init__(self, kernel: str = "rbf", C: float = 1.0, gamma="scale", degree: int = 3, coef0: float = 0.0,
                 epochs: int = 1000, lr: float | None = None, momentum: float = 0.99, seed: int | None = None):
        if kernel not in KERNELS:
            raise ValueError(f"KernelSVM: kernel must be one of {KERNELS}, got {kernel!r}")
        if not C > 0:
            raise ValueError(f"KernelSVM: C must be positive, got {C}")
        if not (gamma in ("scale", "auto") or (isinstance(gamma, (int, float)) and gamma > 0)):
            raise ValueError(f"KernelSVM: gamma must be 'scale', 'auto' or a positive number, got {gamma!r}")
        if int(degree) != degree or degree < 0:
            raise ValueError(f"KernelSVM: degree must be a non-negative integer, got {degree}")
        if epochs < 1 or (lr is not None and not lr > 0):
            raise ValueError(f"KernelSVM: epochs must be >= 1 and lr positive, got epochs={epochs}, lr={lr}")
        self.kernel, self.C, self.gamma, self.degree, self.coef0 = kernel, float(C), gamma, int(degree), float(coef0)
        self.epochs, self.lr, self.momentum, self.seed = int(epochs), lr, float(momentum), seed

    def __repr__(self):
        return (f"KernelSVM(kernel={self.kernel!r}, C={self.C}, gamma={self.gamma!r}, degree={self.degree}, "
                f"coef0={self.coef0}, epochs={self.epochs}, lr={self.lr})")

    # --- the kernel, computed with the engine's ops (matmul on the selected backend) ---------------------
    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with no_grad():
            ta, tb = Tensor(a), Tensor(b)
            dot = ta @ tb.T
            if self.kernel == "linear":
                k = dot
            elif self.kernel == "poly":
                k = (dot * self.gamma_ + self.coef0) ** self.degree
            elif self.kernel == "sigmoid":
                k = (dot * self.gamma_ + self.coef0).tanh()
            else:
                sq = (ta * ta).sum(axis=1, keepdims=True) + (tb * tb).sum(axis=1).reshape(1, -1) - dot * 2.0
                k = (sq.clamp(min=0.0) * -self.gamma_).exp()
        return k.numpy()

    def _resolve_gamma(self, x: np.ndarray) -> float:
        if self.gamma == "scale":
            var = x.var()
            return 1.0 / (x.shape[1] * var) if var > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / x.shape[1]
        return float(self.gamma)

    # --- training ----------------------------------------------------------------------------
    def fit(self, x, y) -> "KernelSVM":
        """Train on x (n, d) and labels y (n,) of exactly two classes; classes_[1] is the positive class."""
        x = _features(x, "fit")
        y = np.asarray(y.numpy() if isinstance(y, Tensor) else y)
        if y.shape != (x.shape[0],):
            raise ValueError(f"KernelSVM.fit: labels of shape {y.shape} do not match x of shape {x.shape}")
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"KernelSVM.fit: needs exactly two classes, got {len(self.classes_)}: {self.classes_}")
        ys = np.where(y == self.classes_[1], 1.0, -1.0)
        self.n_features_in_ = x.shape[1]
        self.gamma_ = self._resolve_gamma(x)
        q = ys[:, None] * ys[None, :] * self._kernel(x, x)
        lr = self.lr if self.lr is not None else 1.0 / max(largest_eigenvalue(q), 1e-12)

        start = np.zeros(len(ys))
        if self.seed is not None:
            start = project_box_hyperplane(np.random.default_rng(self.seed).uniform(0, self.C, len(ys)), ys, self.C)
        alpha = Parameter(start)
        opt = optim.SGD([alpha], lr=lr, momentum=self.momentum, nesterov=self.momentum > 0)
        self.objective_ = []
        for _ in range(self.epochs):
            opt.zero_grad()
            dual = HalfQuadraticForm.apply(alpha, q) - alpha.sum()
            dual.backward()
            opt.step()
            with no_grad():
                alpha.data = project_box_hyperplane(alpha._data, ys, self.C)
            self.objective_.append(dual.item())

        a = alpha.detach().numpy().copy()
        self.intercept_ = self._intercept(a, ys, q)
        self.support_ = np.flatnonzero(a > 0)
        self.support_vectors_ = x[self.support_]
        self.dual_coef_ = a[self.support_] * ys[self.support_]
        return self

    def _intercept(self, a, ys, q) -> float:
        """b from the KKT conditions (libsvm's rule): -mean(y_i G_i) over free a_i, G = Q a - 1;
        without free ones, the middle of the interval the bounded a_i allow."""
        yg = ys * (q @ a - 1)
        free = (a > 0) & (a < self.C)
        if free.any():
            return float(-yg[free].mean())
        at_upper = ((a >= self.C) & (ys < 0)) | ((a <= 0) & (ys > 0))
        ub = yg[at_upper].min() if at_upper.any() else np.inf
        lb = yg[~at_upper].max() if (~at_upper).any() else -np.inf
        if not np.isfinite(ub):
            ub = lb
        if not np.isfinite(lb):
            lb = ub
        return float(-(ub + lb) / 2)

    # --- prediction ------------------------------------------------------------------------------
    def _check_fitted(self, x, name):
        if not hasattr(self, "intercept_"):
            raise RuntimeError(f"KernelSVM.{name}: call fit(x, y) first")
        x = _features(x, name)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"KernelSVM.{name}: x of shape {x.shape} has {x.shape[1]} features, the model was "
                             f"fitted on {self.n_features_in_}")
        return x

    def decision_function(self, x) -> np.ndarray:
        """f(x) = sum_j a_j y_j K(x_j, x) + b; positive means classes_[1]."""
        x = self._check_fitted(x, "decision_function")
        if len(self.support_) == 0:
            return np.full(x.shape[0], self.intercept_)
        return self._kernel(x, self.support_vectors_) @ self.dual_coef_ + self.intercept_

    def predict(self, x) -> np.ndarray:
        """Class labels (from classes_) for the rows of x."""
        positive = self.decision_function(x) > 0
        return self.classes_[positive.astype(np.int64)]

    def score(self, x, y) -> float:
        """Accuracy of predict(x) against y."""
        y = np.asarray(y.numpy() if isinstance(y, Tensor) else y)
        pred = self.predict(x)
        if y.shape != pred.shape:
            raise ValueError(f"KernelSVM.score: labels of shape {y.shape} do not match x with {len(pred)} rows")
        return float((pred == y).mean())


def compare_kernels(x_train, y_train, x_test, y_test, kernels=KERNELS, Cs=(0.1, 1.0, 10.0), **options) -> dict:
    """Test accuracy of a KernelSVM per kernel and C: {kernel: {C: accuracy}} (the course's sweep of C)."""
    return {k: {c: KernelSVM(kernel=k, C=c, **options).fit(x_train, y_train).score(x_test, y_test) for c in Cs}
            for k in kernels}
