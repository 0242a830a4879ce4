"""Tests of the course's networks (tinygrad_course.models): CifarNet, mnist_mlp, circles_mlp.

Shapes and parameter counts against COURSE.md, the layer order, train/eval behaviour of dropout and
batch norm, a few SGD steps that reduce the loss, and (where torch is installed) equality with the
same network written in torch.nn, weights copied, in float64 (rtol 1e-10: only summation orders differ).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn, optim
from tinygrad_course.models import CifarNet, circles_mlp, mnist_classic_mlp, mnist_mlp
from tinygrad_course.nn import functional as F


def _images(n, c=3, size=32, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, c, size, size)).astype(dtype)


def _labels(n, classes=10, seed=1):
    return np.random.default_rng(seed).integers(0, classes, size=n)


def _count(model, predicate=lambda name: True):
    return sum(p.numel() for name, p in model.named_parameters() if predicate(name))


# --- shapes and parameter counts ------------------------------------------------------------------
def test_cifarnet_output_shape_and_parameter_count_match_course():
    model = CifarNet()
    assert model(tg.Tensor(_images(2))).shape == (2, 10)
    assert model.num_parameters() == 1_191_170  # COURSE.md section 3, conv biases counted
    conv_biases = {"features.0.bias", "features.3.bias", "features.6.bias"}
    assert _count(model, lambda name: name not in conv_biases) == 1_191_010  # the figure the course reports
    assert [p.shape for p in model.parameters()] == [
        (32, 3, 5, 5), (32,), (64, 32, 5, 5), (64,), (64, 64, 5, 5), (64,), (1000, 1024), (1000,), (10, 1000), (10,)]


def test_cifarnet_layer_order_batch_norm_before_relu_and_dropout_before_last_fc():
    model = CifarNet(batch_norm=True, dropout=0.5)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 3
    assert [type(m).__name__ for m in model.classifier] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert model.classifier[3].p == 0.5
    assert model.num_parameters() == 1_191_170 + 2 * (32 + 64 + 64)
    assert [type(m).__name__ for m in CifarNet().classifier] == ["Flatten", "Linear", "ReLU", "Linear"]


def test_cifarnet_variants_mnist_shape_and_classes():
    model = CifarNet(in_channels=1, image_size=28, num_classes=7)
    assert model.classifier[1].in_features == 3 * 3 * 64  # 28 -> 14 -> 7 -> 3
    assert model(tg.Tensor(_images(3, c=1, size=28))).shape == (3, 7)
    with pytest.raises(ValueError):
        CifarNet(dropout=1.0)
    with pytest.raises(ValueError):
        CifarNet(image_size=4)


def test_mlps_shapes_and_parameter_counts():
    mlp = mnist_mlp()
    assert mlp(tg.randn(5, 784)).shape == (5, 10)
    assert mlp.num_parameters() == (784 + 1) * 256 + (256 + 1) * 10 == 203_530
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear"]
    assert mnist_mlp(hidden=16)[0].out_features == 16
    classic = mnist_classic_mlp()
    out = classic(tg.randn(4, 784)).detach().numpy()
    assert out.shape == (4, 10) and ((out > 0) & (out < 1)).all()  # sigmoid outputs for the squared error
    assert classic.num_parameters() == (784 + 1) * 16 + (16 + 1) * 16 + (16 + 1) * 10 == 13_002
    circles = circles_mlp()
    assert circles(tg.randn(3, 2)).shape == (3, 2) and circles.num_parameters() == (2 + 1) * 4 + (4 + 1) * 2


# --- train / eval behaviour -------------------------------------------------------------------------
def test_cifarnet_dropout_is_stochastic_in_train_and_identity_in_eval():
    x = tg.Tensor(_images(4))
    model = CifarNet(dropout=0.5)
    plain = CifarNet()  # the same weights; its last fc is classifier.3 instead of classifier.4
    plain.load_state_dict(dict(zip(plain.state_dict(), model.state_dict().values())))
    with tg.no_grad():
        a, b = model(x).numpy(), model(x).numpy()
        assert not np.allclose(a, b)  # a fresh mask per call
        model.eval()
        np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
        np.testing.assert_allclose(model(x).numpy(), plain(x).numpy(), rtol=1e-6, atol=1e-6)


def test_cifarnet_batch_norm_uses_batch_statistics_in_train_and_running_ones_in_eval():
    x = tg.Tensor(_images(4) * 3 + 1)
    model = CifarNet(batch_norm=True)
    bn = model.features[1]
    with tg.no_grad():
        train_out = model(x).numpy()
        assert int(bn.num_batches_tracked.item()) == 1
        assert not np.allclose(bn.running_mean.numpy(), 0)  # updated from the batch
        running = bn.running_mean.numpy().copy()
        model.eval()
        eval_out = model(x).numpy()
        np.testing.assert_array_equal(bn.running_mean.numpy(), running)  # eval leaves them alone
        assert int(bn.num_batches_tracked.item()) == 1
    assert not np.allclose(train_out, eval_out)


@pytest.mark.parametrize("make, shape, lr", [
    (lambda: CifarNet(), (8, 3, 32, 32), 0.05),
    (lambda: CifarNet(batch_norm=True, dropout=0.5), (8, 3, 32, 32), 0.05),
    (lambda: mnist_mlp(), (16, 784), 0.1),
], ids=["cifarnet", "cifarnet-bn-dropout", "mnist-mlp"])
def test_a_few_sgd_steps_reduce_the_loss_on_a_fixed_batch(backend, make, shape, lr):
    tg.manual_seed(0)
    model = make()
    opt = optim.SGD(model.parameters(), lr=lr)
    x = tg.Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    y = tg.Tensor(_labels(shape[0]))
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses
    model.eval()
    with tg.no_grad():
        assert F.cross_entropy(model(x), y).item() < losses[0]


# --- torch.nn as an oracle (float64, copied weights) ---------------------------------------------------
def _torch_cifarnet(torch, batch_norm, dropout, in_channels=3, side=4):
    tnn = torch.nn

    class TorchCifarNet(tnn.Module):
        def __init__(self):
            super().__init__()
            layers, c_in = [], in_channels
            for c_out in (32, 64, 64):
                layers.append(tnn.Conv2d(c_in, c_out, 5, padding=2))
                layers += [tnn.BatchNorm2d(c_out)] if batch_norm else []
                layers += [tnn.ReLU(), tnn.MaxPool2d(2, 2)]
                c_in = c_out
            self.features = tnn.Sequential(*layers)
            head = [tnn.Flatten(), tnn.Linear(64 * side * side, 1000), tnn.ReLU()]
            head += [tnn.Dropout(dropout)] if dropout > 0 else []
            self.classifier = tnn.Sequential(*head, tnn.Linear(1000, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    return TorchCifarNet().double()


def _copy_to_torch(torch, ours, theirs):
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
def test_cifarnet_matches_torch_forward_and_gradients_in_float64(batch_norm):
    torch = pytest.importorskip("torch")
    model = CifarNet(batch_norm=batch_norm, dropout=0.5).double()
    ref = _torch_cifarnet(torch, batch_norm, 0.5)
    _copy_to_torch(torch, model, ref)
    x, y = _images(3, dtype=np.float64), _labels(3)
    # eval mode: running statistics, dropout off
    model.eval(), ref.eval()
    with tg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(model(tg.Tensor(x)).numpy(), ref(torch.from_numpy(x)).numpy(),
                                   rtol=1e-10, atol=1e-12)
    # train mode (batch statistics) with the dropout layer switched off on both sides
    model.train(), ref.train()
    model.classifier[3].eval(), ref.classifier[3].eval()
    loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(y))
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
    theirs = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)
    if batch_norm:
        np.testing.assert_allclose(model.features[1].running_var.numpy(), ref.features[1].running_var.numpy(),
                                   rtol=1e-10)


def test_mnist_mlp_matches_torch_in_float64():
    torch = pytest.importorskip("torch")
    model = mnist_mlp().double()
    ref = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).double()
    _copy_to_torch(torch, model, ref)
    x = np.random.default_rng(0).standard_normal((5, 784))
    with tg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(model(tg.Tensor(x)).numpy(), ref(torch.from_numpy(x)).numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_models_are_built_from_library_layers():
    for model in (CifarNet(batch_norm=True, dropout=0.5), mnist_mlp(), circles_mlp()):
        assert all(isinstance(m, nn.Module) for m in model.modules())
        assert all(type(m).__module__.startswith("tinygrad_course.") for m in model.modules())


# --- the other course networks --------------------------------------------------------------------
def test_mnist_cnn_iris_mlp_and_image_mlp_shapes_and_counts():
    from tinygrad_course.models import MnistCNN, image_mlp, iris_mlp
    model = MnistCNN()
    assert model(tg.Tensor(_images(2, c=1, size=28))).shape == (2, 10)
    assert model.num_parameters() == (25 + 1) * 32 + (25 * 32 + 1) * 64 + (3136 + 1) * 128 + (128 + 1) * 10
    assert iris_mlp().num_parameters() == (4 + 1) * 8 + (8 + 1) * 3 == 67
    mlp = image_mlp(784, act="leaky_relu", batch_norm=True, dropout=0.2)
    assert [type(m).__name__ for m in mlp][:5] == ["Flatten", "Linear", "BatchNorm1d", "LeakyReLU", "Dropout"]
    assert mlp(tg.Tensor(_images(3, c=1, size=28))).shape == (3, 10)
    with pytest.raises(ValueError, match="activation"):
        image_mlp(10, act="swish")


@pytest.mark.parametrize("in_channels,size", [(1, 28), (3, 32)])
def test_homework_cnn_matches_the_course_parameter_formula(in_channels, size):
    from tinygrad_course.models import HomeworkCNN, parameter_count_formula
    for filters in [(64, 128, 128, 256, 256), (32, 64, 64, 128, 128)]:
        model = HomeworkCNN(in_channels=in_channels, image_size=size, filters=filters, dense=(256, 128))
        side = size // 8
        assert model.num_parameters() == parameter_count_formula(filters, in_channels,
                                                                 (filters[-1] * side * side, 256, 128, 10))
    small = HomeworkCNN(in_channels=in_channels, image_size=size, filters=(4, 4, 8, 8, 8), act="tanh",
                        batch_norm=True)
    assert small(tg.Tensor(_images(2, c=in_channels, size=size))).shape == (2, 10)
    with pytest.raises(ValueError, match="5 positive"):
        HomeworkCNN(filters=(8, 8))


def test_segnet_gives_one_logit_per_pixel_and_learns_a_simple_mask():
    from tinygrad_course.models import SegNet
    tg.manual_seed(0)
    model = SegNet(in_channels=3, widths=(4, 8, 8))
    x = _images(4, c=3, size=16)
    assert model(tg.Tensor(x)).shape == (4, 1, 16, 16)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(tg.Tensor(_images(1, c=3, size=18)))
    # target: the top half of every image is "sky"; a few Adam steps must fit it well
    mask = np.zeros((4, 1, 16, 16), np.float32)
    mask[:, :, :8] = 1
    opt = optim.Adam(model.parameters(), lr=0.02)
    for _ in range(30):
        loss = F.binary_cross_entropy_with_logits(model(tg.Tensor(x)), tg.Tensor(mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pred = model(tg.Tensor(x)).detach().numpy() > 0
    assert (pred == (mask > 0)).mean() > 0.95
