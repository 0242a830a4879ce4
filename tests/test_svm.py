"""KernelSVM (models/svm.py) against scikit-learn's SVC on the course's circles data (COURSE.md section 1).

The circles split of the course: 1000 points, noise 0.1, factor 0.5, 800/200 with seed 0. Both solve
the same dual problem, so for the convex kernels the dual objectives agree and the predictions nearly
coincide; the sigmoid kernel is not positive semi-definite, its dual has local optima, and only
accuracy (within a few points) and our objective being at least as good are required.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.data.toy import make_circles, make_gaussians, train_test_split
from tinygrad_course.models.svm import HalfQuadraticForm, KernelSVM, compare_kernels, project_box_hyperplane
from tinygrad_course.testing import gradcheck

svm = pytest.importorskip("sklearn.svm")
pairwise = pytest.importorskip("sklearn.metrics.pairwise")



@pytest.fixture(scope="module")
def circles():
    x, y = make_circles(1000, noise=0.1, factor=0.5, seed=0)
    return train_test_split(x, y, test_size=0.2, seed=0)


def _dual_objective(x, y, alpha, kernel, gamma):
    params = {} if kernel == "linear" else dict(gamma=gamma, **({} if kernel == "rbf" else dict(coef0=0.0)))
    if kernel == "poly":
        params["degree"] = 3
    k = pairwise.pairwise_kernels(x.astype(np.float64), metric=kernel, **params)
    ys = np.where(y == 1, 1.0, -1.0)
    q = ys[:, None] * ys[None, :] * k
    return 0.5 * alpha @ q @ alpha - alpha.sum()


@pytest.mark.parametrize("kernel", ["linear", "poly", "sigmoid", "rbf"])
def test_matches_sklearn_svc_on_circles(circles, kernel):
    x_train, x_test, y_train, y_test = circles
    ours = KernelSVM(kernel=kernel, C=1.0, epochs=500).fit(x_train, y_train)  # the default is 1000
    ref = svm.SVC(kernel=kernel, C=1.0, gamma="scale", degree=3, coef0=0.0).fit(x_train, y_train)
    assert ours.gamma_ == pytest.approx(ref._gamma, rel=1e-6)
    acc, ref_acc = ours.score(x_test, y_test), ref.score(x_test, y_test)
    assert abs(acc - ref_acc) <= 0.05, (kernel, acc, ref_acc)

    ref_alpha = np.zeros(len(y_train))
    ref_alpha[ref.support_] = np.abs(ref.dual_coef_[0])
    ref_obj = _dual_objective(x_train, y_train, ref_alpha, kernel, ref._gamma)
    assert ours.objective_[-1] <= ref_obj + 1e-3 * abs(ref_obj)       # at least as good as libsvm's
    if kernel != "sigmoid":                                            # convex: the same optimum
        assert ours.objective_[-1] == pytest.approx(ref_obj, rel=1e-3)
        assert np.mean(ours.predict(x_test) == ref.predict(x_test)) >= 0.97
    if kernel == "rbf":
        assert acc >= 0.94
        np.testing.assert_allclose(ours.decision_function(x_test), ref.decision_function(x_test), atol=0.05)


def test_constraints_hold_and_support_vectors_are_consistent(circles):
    x_train, _, y_train, _ = circles
    m = KernelSVM(kernel="rbf", C=0.5, epochs=200).fit(x_train, y_train)
    alpha = np.abs(m.dual_coef_)
    assert np.all(alpha > 0) and np.all(alpha <= 0.5 + 1e-12)
    assert abs(m.dual_coef_.sum()) < 1e-6                              # sum a_i y_i = 0
    np.testing.assert_array_equal(m.support_vectors_, x_train[m.support_].astype(np.float64))
    assert len(m.objective_) == 200 and m.objective_[-1] < m.objective_[0]


def test_labels_any_two_classes_and_tensor_inputs():
    x, y = make_gaussians(120, noise=0.4, seed=1)
    names = np.array(["cat", "dog"])[y]
    m = KernelSVM(kernel="linear", epochs=200).fit(tg.Tensor(x), names)
    assert list(m.classes_) == ["cat", "dog"]
    pred = m.predict(x)
    assert set(pred) <= {"cat", "dog"}
    assert m.score(x, names) >= 0.95
    np.testing.assert_array_equal(pred == "dog", m.decision_function(x) > 0)  # classes_[1] is positive
    signed = KernelSVM(kernel="linear", epochs=200).fit(x, np.where(y == 1, 7, -3))
    np.testing.assert_array_equal(signed.predict(x) == 7, pred == "dog")


def test_c_sweep(circles):
    x_train, x_test, y_train, y_test = circles
    sweep = compare_kernels(x_train[:300], y_train[:300], x_test, y_test, kernels=("rbf", "linear"), Cs=(0.1, 10.0),
                            epochs=200)
    assert set(sweep) == {"rbf", "linear"} and set(sweep["rbf"]) == {0.1, 10.0}
    assert min(sweep["rbf"].values()) >= 0.9 and max(sweep["linear"].values()) <= 0.7


def test_projection_onto_box_and_hyperplane():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(50) > 0.3, 1.0, -1.0)
    v = rng.standard_normal(50) * 3
    a = project_box_hyperplane(v, y, 1.0)
    assert np.all((a >= 0) & (a <= 1)) and abs(y @ a) < 1e-9
    # a projection: any other feasible point is no closer to v
    other = project_box_hyperplane(rng.standard_normal(50), y, 1.0)
    assert np.sum((a - v) ** 2) <= np.sum((other - v) ** 2)
    np.testing.assert_allclose(project_box_hyperplane(a, y, 1.0), a, atol=1e-9)   # idempotent


def test_errors():
    x = np.zeros((6, 2))
    with pytest.raises(ValueError, match="kernel"):
        KernelSVM(kernel="cubic")
    with pytest.raises(ValueError, match="C must be positive"):
        KernelSVM(C=0)
    with pytest.raises(ValueError, match="gamma"):
        KernelSVM(gamma="big")
    with pytest.raises(ValueError, match="exactly two classes"):
        KernelSVM().fit(x, np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels of shape \(5,\) do not match x of shape \(6, 2\)"):
        KernelSVM().fit(x, np.zeros(5))
    with pytest.raises(RuntimeError, match="fit"):
        KernelSVM().predict(x)
    m = KernelSVM(epochs=5).fit(np.random.default_rng(0).standard_normal((6, 2)), np.array([0, 1] * 3))
    with pytest.raises(ValueError, match="3 features"):
        m.predict(np.zeros((2, 3)))


def test_half_quadratic_form_gradient(backend):
    rng = np.random.default_rng(1)
    m = rng.standard_normal((5, 5))
    q = m + m.T
    a = tg.Tensor(rng.standard_normal(5), requires_grad=True)
    assert gradcheck(lambda a: HalfQuadraticForm.apply(a, q), [a])
    assert HalfQuadraticForm.apply(a, q).item() == pytest.approx(0.5 * a.detach().numpy() @ q @ a.detach().numpy())
