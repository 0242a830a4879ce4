"""The "cuda" device: moving tensors and modules, device errors, autograd and training across devices.

Every test that runs "cuda" code runs twice: on the CPU emulation of our CUDA kernels
(TINYGRAD_COURSE_CUDA_EMULATE=1: the same kernels/*.cu compiled by the host compiler, NumPy storage)
and, marked `gpu`, on a real GPU through CuPy (skipped when there is none). Results are compared
with the same computation on "cpu".
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn, optim
from tinygrad_course.device import canonical_device
from tinygrad_course.nn import functional as F


def test_device_names():
    assert canonical_device(None) == "cpu"
    assert canonical_device("CUDA:0") == "cuda"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        canonical_device("tpu")
    with pytest.raises(ValueError, match="unknown device"):
        tg.zeros(2, device="cuda:1")


def test_cuda_without_a_gpu_is_one_clear_error(monkeypatch):
    from tinygrad_course.backend.cuda import CudaUnavailableError, cuda_runtime
    monkeypatch.delenv("TINYGRAD_COURSE_CUDA_EMULATE", raising=False)
    try:
        cuda_runtime()
    except CudaUnavailableError:
        pass
    else:
        pytest.skip("a GPU is available here")
    x = tg.tensor([1.0, 2.0])
    for make in (lambda: x.to("cuda"), lambda: tg.zeros(3, device="cuda"), lambda: nn.Linear(2, 2).to("cuda")):
        with pytest.raises(RuntimeError, match="CuPy|GPU|CUDA"):
            make()


def test_importing_the_package_does_not_import_cupy():
    import subprocess
    import sys
    code = "import sys, tinygrad_course, tinygrad_course.nn, tinygrad_course.backend.cuda; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_to_and_back_copies_and_keeps_values(cuda):
    x = tg.tensor([[1.0, -2.0], [3.0, 4.5]])
    y = x.to(cuda)
    assert y.device == "cuda" and x.device == "cpu" and y.dtype == x.dtype
    y.add_(1.0)  # a copy: the cpu tensor is untouched
    assert x.tolist() == [[1.0, -2.0], [3.0, 4.5]]
    assert y.cpu().tolist() == [[2.0, -1.0], [4.0, 5.5]]
    assert isinstance(y.numpy(), np.ndarray)
    assert "device='cuda'" in repr(y)
    assert tg.ones(2, 3, device=cuda).device == "cuda"
    assert tg.zeros_like(y).device == "cuda"
    assert y.to(cuda) is y


def test_mixing_devices_is_an_error(cuda):
    a, b = tg.ones(3), tg.ones(3, device=cuda)
    with pytest.raises(RuntimeError, match="different devices"):
        a + b
    with pytest.raises(RuntimeError, match="different devices"):
        b.add_(a)
    with pytest.raises(RuntimeError, match="different devices"):
        tg.where(b > 0, b, a)


def test_gradients_flow_across_devices(cuda):
    x = tg.tensor([0.5, -1.5, 2.0], dtype="float64", requires_grad=True)
    y = (x.to(cuda) * 3.0).relu().sum()
    y.backward()
    assert y.device == "cuda"
    assert x.grad.device == "cpu" and x.grad.tolist() == [3.0, 0.0, 3.0]


def _small_net():
    tg.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, stride=2, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(5, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, 3))


def test_module_to_moves_parameters_in_place(cuda):
    net = _small_net()
    params = list(net.parameters())
    net.to(cuda)
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.device == "cuda" for p in net.parameters()) and all(b.device == "cuda" for b in net.buffers())
    state = net.state_dict()
    assert all(isinstance(v, tg.Tensor) and v.device == "cuda" for v in state.values())  # as in PyTorch
    net.cpu()
    assert all(p.device == "cpu" for p in net.parameters())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_steps_match_the_cpu(cuda, dtype):
    """Forward, backward and two SGD-momentum steps of a small CNN give the cpu's numbers on cuda."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8)).astype(dtype)
    y = rng.integers(0, 3, 4)
    results = {}
    for device in ("cpu", cuda):
        net = _small_net().to(dtype=dtype).to(device)
        opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(2):
            loss = F.cross_entropy(net(tg.tensor(x, device=device)), tg.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        results[device] = (losses, net.state_dict())
    tol = 2e-4 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(results[cuda][0], results["cpu"][0], rtol=tol)
    for name, value in results["cpu"][1].items():
        np.testing.assert_allclose(results[cuda][1][name], value, rtol=tol, atol=tol, err_msg=name)


def test_elementwise_ops_and_indexing_on_cuda(cuda):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    ops = [lambda t: (t.exp() + t.abs().sqrt() - t.tanh() * t.sigmoid()).log_softmax(1),
           lambda t: t.max(axis=0).values + t.mean(axis=0) + t.std(axis=0),
           lambda t: t[[0, 2], 1:] * 2.0,
           lambda t: tg.concat([t, t.leaky_relu(0.1)], axis=1).pad((1, 1)).clamp(-0.5, 0.5),
           lambda t: F.interpolate(t.reshape(1, 1, 3, 4), scale_factor=2, mode="bilinear"),
           lambda t: F.binary_cross_entropy_with_logits(t, (t > 0).astype("float64"))]
    for i, op in enumerate(ops):
        outs = []
        for device in ("cpu", cuda):
            t = tg.tensor(a, requires_grad=True, device=device)
            out = op(t)
            out.sum().backward()
            outs.append((out.detach().numpy(), t.grad.numpy()))
        np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-12, err_msg=f"op {i}")
        np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-12, atol=1e-15, err_msg=f"op {i} grad")


def test_dropout_on_cuda_is_seeded_and_scaled(cuda):
    x = tg.ones(64, 64, device=cuda)
    tg.manual_seed(5)
    a = F.dropout(x, 0.25).numpy()
    tg.manual_seed(5)
    b = F.dropout(x, 0.25).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a).tolist()) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a > 0).mean() - 0.75) < 0.03


def test_trainer_runs_on_cuda(cuda, tmp_path):
    from tinygrad_course.data import DataLoader
    from tinygrad_course.training import Trainer
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    net = _small_net()
    trainer = Trainer(net, optim.SGD(net.parameters(), lr=0.05), F.cross_entropy,
                      DataLoader((x, y), batch_size=6, shuffle=True, seed=0), {"test": DataLoader((x, y), batch_size=6)},
                      num_classes=3, out_dir=tmp_path, show_progress=False, device=cuda)
    history = trainer.fit(1)
    assert np.isfinite(history[0]["train_loss"]) and 0 <= history[0]["test_top1"] <= 1
    assert all(p.device == "cuda" for p in net.parameters())
    assert (tmp_path / "checkpoint.npz").exists()


# --- the Numba kernel (under Numba's CUDA simulator when there is no GPU) --------------------------
def test_dropout_kernel_equals_its_reference():
    pytest.importorskip("numba")
    from numba import cuda as numba_cuda

    from tinygrad_course.backend.cuda_numba import dropout_mask_kernel, dropout_mask_reference
    for shape, p, dtype in [((5, 61), 0.3, np.float32), ((300,), 0.5, np.float64), ((2, 3), 0.0, np.float32)]:
        scale = np.dtype(dtype).type(1 / (1 - p))
        ref = dropout_mask_reference(shape, p, scale, seed=987654321)
        out = np.full(int(np.prod(shape)), np.nan, dtype=dtype)  # poisoned: unwritten elements show
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's uint64 wrap-around warnings
            d_out = numba_cuda.to_device(out)
            dropout_mask_kernel[(out.size + 127) // 128, 128](d_out, np.uint64(987654321), p, scale)
            out = d_out.copy_to_host()
        np.testing.assert_array_equal(out.reshape(shape), ref)


def test_dropout_reference_statistics():
    pytest.importorskip("numba")
    from tinygrad_course.backend.cuda_numba import dropout_mask_reference
    for p in (0.1, 0.5, 0.9):
        m = dropout_mask_reference((200_000,), p, np.float32(1 / (1 - p)), seed=11)
        assert abs((m > 0).mean() - (1 - p)) < 0.005
        assert abs(m.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    a = dropout_mask_reference((1000,), 0.5, np.float32(2), seed=1)
    b = dropout_mask_reference((1000,), 0.5, np.float32(2), seed=2)
    assert (a != b).mean() > 0.4  # another seed, another mask


def test_trainer_keeps_the_models_device_by_default(cuda):
    from tinygrad_course.training import Trainer
    net = _small_net().to(cuda)
    trainer = Trainer(net, optim.SGD(net.parameters(), lr=0.1), F.cross_entropy, [], show_progress=False)
    assert trainer.device == "cuda" and all(p.device == "cuda" for p in net.parameters())


def test_losses_metrics_and_checkpoints_take_cuda_tensors(cuda, tmp_path):
    from tinygrad_course import checkpoint, metrics
    logits = tg.tensor(np.random.default_rng(3).standard_normal((2, 1, 4, 4)), device=cuda, requires_grad=True)
    mask = (np.arange(32).reshape(2, 1, 4, 4) % 3 == 0).astype(np.float64)  # a NumPy target
    for loss in (F.dice_loss(logits, mask), F.focal_loss(logits, mask), F.jaccard_loss(logits, mask)):
        loss.backward()
        assert loss.device == "cuda" and np.isfinite(loss.item())
    labels = tg.tensor([2, 0, 1], device=cuda)
    assert F.one_hot(labels, 3).device == "cuda" and F.one_hot(labels, 3).numpy().argmax(1).tolist() == [2, 0, 1]
    assert metrics.accuracy(tg.tensor([[0.1, 0.9], [0.8, 0.2]], device=cuda), labels[:2].cpu()) == 0.5  # predictions 1, 0
    checkpoint.save(tmp_path / "c.npz", {"w": tg.ones(3, device=cuda)})
    assert checkpoint.load(tmp_path / "c.npz")[0]["w"].tolist() == [1.0, 1.0, 1.0]
