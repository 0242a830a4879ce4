"""gradcheck itself: it passes correct gradients and catches wrong ones, naming the culprit."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.testing import GradcheckError, gradcheck, numerical_jacobian


class SquareWrongAt(tg.Function):
    """y = x * x, with a backward that is wrong at exactly one element of x."""

    bad = (1, 2)

    def forward(self, x):
        self.save(x)
        return x * x

    def backward(self, g):
        gx = 2 * self.saved[0] * g
        gx[self.bad] *= 1.5
        return gx


class ScaledProduct(tg.Function):
    """y = a * b; the gradient of the SECOND input is off by a factor 1.01 (1% -- above rtol 1e-3)."""

    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        return g * b, g * a * 1.01


def x64(shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).uniform(0.5, 1.5, shape), dtype="float64", requires_grad=True)


def test_passes_on_correct_functions():
    x, y = x64((3, 4)), x64((4,), 1)
    assert gradcheck(lambda x, y: (x.tanh() * y).sum(axis=1), [x, y]) is True
    assert gradcheck(lambda x: x.exp() @ x.T, [x]) is True
    # a non-tensor argument and an input without requires_grad are passed through unchanged
    c = tg.tensor(np.ones(4))
    assert gradcheck(lambda x, k, c: x * k + c, [x, 2.5, c]) is True


def test_leaves_inputs_unchanged_and_grads_cleared():
    x = x64((2, 3))
    before = x.detach().numpy().copy()
    gradcheck(lambda x: x * x, [x])
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None


def test_fails_on_a_wrong_backward_naming_input_and_element():
    x = x64((3, 4))
    with pytest.raises(GradcheckError) as e:
        gradcheck(lambda x: SquareWrongAt.apply(x), [x])
    msg = str(e.value)
    assert "input 0" in msg and "element (1, 2)" in msg and "output element (1, 2)" in msg
    assert "analytic" in msg and "numerical" in msg
    assert gradcheck(lambda x: SquareWrongAt.apply(x), [x], raise_exception=False) is False


def test_names_the_second_input_when_its_gradient_is_wrong():
    a, b = x64((2, 3)), x64((2, 3), 1)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 3\)\)"):
        gradcheck(lambda a, b: ScaledProduct.apply(a, b), [a, b])
    b.requires_grad_(False)  # only the first (correct) input checked: passes
    assert gradcheck(lambda a, b: ScaledProduct.apply(a, b), [a, b])


def test_random_projection_path_also_detects_a_wrong_backward():
    x = x64((10, 9))  # 90 outputs > max_full_outputs=64: checked through random projections v^T J
    with pytest.raises(GradcheckError) as e:
        gradcheck(lambda x: SquareWrongAt.apply(x), [x])
    msg = str(e.value)
    assert "random projection" in msg and "element (1, 2)" in msg
    assert gradcheck(lambda x: x * x, [x])  # the correct function passes on the same path
    # forcing the projection path on a small output works the same way
    y = x64((3, 4))
    with pytest.raises(GradcheckError, match="random projection"):
        gradcheck(lambda x: SquareWrongAt.apply(x), [y], max_full_outputs=4, n_projections=2)


def test_small_errors_below_tolerance_pass_and_above_fail():
    a, b = x64((2, 2)), x64((2, 2), 1)
    # a 1% error fails at the default rtol 1e-3 but passes with rtol 0.05
    assert gradcheck(lambda a, b: ScaledProduct.apply(a, b), [a, b], rtol=0.05, atol=0)
    with pytest.raises(GradcheckError):
        gradcheck(lambda a, b: ScaledProduct.apply(a, b), [a, b], rtol=1e-3, atol=0)


@pytest.mark.parametrize("dtype", ["float32"])
def test_non_float64_inputs_raise_type_error(dtype):
    x = tg.ones(3, dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2, [x])


def test_no_input_requiring_grad_raises():
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda x: x * 2, [tg.ones(3, dtype="float64")])


def test_function_must_return_a_tensor():
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda x: x.detach().numpy(), [x64((2,))])


def test_numerical_jacobian_of_a_linear_map_is_its_matrix():
    m = np.random.default_rng(3).standard_normal((3, 4))
    x = x64((4,))
    jac = numerical_jacobian(lambda x: tg.tensor(m) @ x, [x], x)
    np.testing.assert_allclose(jac, m, atol=1e-8)
