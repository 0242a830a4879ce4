"""The PyTorch-style example scripts examples/mnist_cnn.py and examples/quickstart_mlp.py run
unchanged apart from their imports: each is run as a subprocess from the repository root, on
generated data (always) and on a small slice of the shared real data set (when present).

Bounds below were measured with the default seeds (numbers in the comments) and given a margin.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
FINAL = re.compile(r"^final test loss (\d+\.\d+) accuracy (\d+\.\d+)$", re.M)


def run_example(name, *args, timeout=120):
    proc = subprocess.run([sys.executable, f"examples/{name}.py", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    m = FINAL.findall(proc.stdout)
    assert len(m) == 1, proc.stdout[-2000:]
    loss, acc = map(float, m[0])
    return proc.stdout, loss, acc


@pytest.mark.parametrize("name", ["mnist_cnn", "quickstart_mlp"])
def test_example_imports_only_tinygrad_course(name):
    source = (REPO / "examples" / f"{name}.py").read_text()
    code = source.split('"""', 2)[2]  # past the docstring, which quotes the PyTorch lines
    assert not re.search(r"^\s*(import torch|from torch)\b", code, re.M)
    assert not re.search(r"^\s*(import|from) torchvision\b", code, re.M)


def test_mnist_cnn_synthetic(tmp_path):
    # measured: train loss 2.34 -> 0.19 over 8 batches, final test loss 0.0140 accuracy 1.0000
    path = tmp_path / "mnist_cnn.pt"
    out, loss, acc = run_example("mnist_cnn", "--synthetic", 512, "--epochs", 1, "--max-batches", 8,
                                 "--log-interval", 1, "--save-model", path)
    losses = [float(x) for x in re.findall(r"Loss: (\d+\.\d+)", out)]
    assert len(losses) == 8
    assert losses[-1] < 0.5 * losses[0], losses
    assert loss < 0.3 and acc >= 0.9, (loss, acc)
    assert path.exists()
    # the reloaded state dict gives the same test numbers as the trained model
    tests = re.findall(r"Average loss: (\d+\.\d+), Accuracy: (\d+)/", out)
    assert len(tests) == 2 and tests[0] == tests[1], tests


def test_quickstart_mlp_synthetic(tmp_path):
    # measured: train loss 2.311 -> 1.765 over 32 batches, final test loss 1.6984 accuracy 0.6094
    path = tmp_path / "model.pth"
    out, loss, acc = run_example("quickstart_mlp", "--synthetic", 2048, "--epochs", 1, "--max-batches", 32,
                                 "--lr", 0.1, "--model-path", path)
    losses = [float(x) for x in re.findall(r"^loss: +(\d+\.\d+)", out, re.M)]
    assert len(losses) == 4
    assert losses[-1] < losses[0] - 0.3, losses
    assert loss < 2.0 and acc >= 0.4, (loss, acc)
    assert path.exists()
    tests = re.findall(r"Accuracy: ([\d.]+)%, Avg loss: ([\d.]+)", out)
    assert len(tests) == 2 and tests[0] == tests[1], tests


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared MNIST copy not present")
def test_mnist_cnn_real_slice():
    # measured: 1 epoch on the first 3000 training images, first 1000 test images:
    # final test loss 0.4686 accuracy 0.8560 (about 2 s)
    _, loss, acc = run_example("mnist_cnn", "--data-root", SHARED, "--epochs", 1, "--train-size", 3000,
                               "--test-size", 1000, "--log-interval", 20)
    assert acc >= 0.75 and loss < 0.8, (loss, acc)


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="shared FashionMNIST copy not present")
def test_quickstart_mlp_real_slice(tmp_path):
    # measured: 1 epoch, lr 0.1, batch 32, first 20000 training / 2000 test images:
    # final test loss 0.5038 accuracy 0.8260 (about 3 s)
    _, loss, acc = run_example("quickstart_mlp", "--data-root", SHARED, "--epochs", 1, "--train-size", 20000,
                               "--test-size", 2000, "--lr", 0.1, "--batch-size", 32,
                               "--model-path", tmp_path / "model.pth")
    assert acc >= 0.75 and loss < 0.75, (loss, acc)


def test_accelerator_namespace_answers_as_cuda():
    # torch.accelerator, as PyTorch's newer example scripts pick their device (mnist_cnn.py does)
    import tinygrad_course as torch
    assert torch.accelerator.is_available() == torch.cuda.is_available()
    assert torch.accelerator.device_count() == torch.cuda.device_count()
    current = torch.accelerator.current_accelerator()
    assert current == ("cuda" if torch.cuda.is_available() else None)
    code = ("import tinygrad_course as torch; d = torch.accelerator.current_accelerator(); "
            "print(torch.accelerator.is_available(), d.type, torch.zeros(2, device=d).device)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TINYGRAD_COURSE_CUDA_EMULATE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "cuda", "cuda"]


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared MNIST copy not present")
def test_mnist_cnn_full_epoch():
    # measured: 1 full epoch with the defaults (Adadelta lr 1.0, batch 64): final test loss 0.0521
    # accuracy 0.9851 on all 10000 test images (about 35 s on 2 idle cores)
    _, loss, acc = run_example("mnist_cnn", "--data-root", SHARED, "--epochs", 1, "--log-interval", 200, timeout=600)
    assert acc >= 0.97 and loss < 0.1, (loss, acc)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="shared FashionMNIST copy not present")
def test_quickstart_mlp_tutorial_defaults(tmp_path):
    # measured: the tutorial's 5 epochs of SGD lr 1e-3, batch 64: accuracy 43.6, 57.6, 61.4, 63.7, 65.0 %,
    # final test loss 1.0718 accuracy 0.6501 (about 24 s on 2 idle cores), in line with PyTorch's tutorial
    _, loss, acc = run_example("quickstart_mlp", "--data-root", SHARED, "--model-path", tmp_path / "model.pth",
                               timeout=600)
    assert acc >= 0.60 and loss < 1.2, (loss, acc)
