"""Run examples/cifar10_cnn.py and examples/char_mlp.py as scripts, the way a course user would."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "datasets"
FINAL = re.compile(r"final test loss ([0-9.]+) accuracy ([0-9.]+)")


def run_example(name, *args, timeout=300):
    proc = subprocess.run([sys.executable, f"examples/{name}.py", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = FINAL.fullmatch(last)
    assert m, f"last line is not the final summary: {last!r}"
    return proc.stdout, float(m.group(1)), float(m.group(2))


def train_losses(out, pattern):
    return [float(x) for x in re.findall(pattern, out)]


def test_cifar10_cnn_synthetic_learns(tmp_path):
    # measured: train loss 2.29 -> 0.04 over 128 batches, final test loss 0.0016, accuracy 1.0
    out, loss, acc = run_example("cifar10_cnn", "--synthetic", 1024, "--epochs", 1, "--batch-size", 8,
                                 "--lr", 0.01, "--log-interval", 32, "--max-batches", 128,
                                 "--save-model", tmp_path / "cifar_net.pth")
    losses = train_losses(out, r"train loss: ([0-9.]+)")
    assert len(losses) == 4 and losses[-1] < losses[0] - 1.0, losses
    assert loss < 0.5 and acc > 0.8, (loss, acc)
    assert len(re.findall(r"Accuracy for class: \w+ +is [0-9.]+ %", out)) == 10
    assert (tmp_path / "cifar_net.pth").exists()


def test_char_mlp_generated_words_learns(tmp_path):
    # measured: train loss 2.28 (first 100 steps) -> 1.77, final test loss 1.747 accuracy 0.415
    # (uniform guessing over 27 characters is ln 27 = 3.30)
    out, loss, acc = run_example("char_mlp", "--synthetic", 2000, "--epochs", 1, "--max-batches", 500,
                                 "--save-model", tmp_path / "char_mlp.pth")
    losses = train_losses(out, r"train loss ([0-9.]+)")
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.3, losses
    assert loss < 2.1 and acc > 0.3, (loss, acc)
    lines = out.strip().splitlines()
    samples = lines[-11:-1]
    assert len(samples) == 10 and all(re.fullmatch(r"[a-z]*", s) for s in samples), samples


def test_char_mlp_reads_a_word_file(tmp_path):
    words = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 40
    (tmp_path / "names.txt").write_text("\n".join(words) + "\n")
    out, loss, acc = run_example("char_mlp", "--words", "names.txt", "--data-root", tmp_path, "--epochs", 2,
                                 "--max-batches", 200, "--save-model", "", "--num-samples", 3)
    assert out.startswith("400 words, 27 characters")
    # ten names repeated: the model nearly memorises them (measured: test loss 0.795, accuracy 0.776)
    assert loss < 1.3 and acc > 0.6, (loss, acc)


def test_dot_data_sgd_update_changes_the_leaf():
    # the update char_mlp.py writes, as PyTorch course code writes it: p.data += -lr * p.grad
    import tinygrad_course as torch
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    p.data += -0.1 * p.grad
    assert p.requires_grad and p.is_leaf
    assert [round(v, 6) for v in p.tolist()] == [0.8, 1.6]


@pytest.mark.slow
@pytest.mark.skipif(not (DATA_ROOT / "cifar-10").is_dir(), reason="shared CIFAR-10 copy not present")
def test_cifar10_cnn_real_slice(tmp_path):
    # measured: 1000 batches of 8 (8,000 images), test on the first 1,000: loss 1.773 accuracy 0.334 (15-30 s, 10 s of it loading)
    out, loss, acc = run_example("cifar10_cnn", "--data-root", DATA_ROOT, "--epochs", 1, "--batch-size", 8,
                                 "--lr", 0.005, "--max-batches", 1000, "--test-subset", 1000,
                                 "--log-interval", 250, "--save-model", tmp_path / "cifar_net.pth", timeout=600)
    losses = train_losses(out, r"train loss: ([0-9.]+)")
    assert losses[-1] < losses[0] - 0.2, losses
    assert acc > 0.25 and loss < 2.05, (loss, acc)


def test_counting_into_an_element_in_place():
    # the bigram-count line of the makemore course code: N[ix1, ix2] += 1; torch's N[i, j] is a 0-d view
    import tinygrad_course as torch
    N = torch.zeros((3, 3), dtype=torch.int64)
    for a, b in [(1, 2), (1, 2), (0, 1)]:
        N[a, b] += 1
    assert N.tolist() == [[0, 1, 0], [0, 0, 2], [0, 0, 0]]
    x = torch.tensor([1.0, 2.0, 3.0])
    v = x[1]
    v += 10  # a view: changes x, as in PyTorch
    assert x.tolist() == [1.0, 12.0, 3.0] and v.item() == 12.0
