"""viz.draw_graph: the autograd graph as nodes and edges, a text tree, DOT source and (with Graphviz) pictures."""
import re
import shutil
import sys

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import viz
from tinygrad_course.cli import main
from tinygrad_course.course import circles
from tinygrad_course.models import circles_mlp
from tinygrad_course.nn import functional as F


def _has_dot():
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


needs_dot = pytest.mark.skipif(not _has_dot(), reason="needs the graphviz package and Graphviz's dot program")


def _tiny():
    """(a * b + a).sum() with a used twice."""
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    b = tg.Tensor([3.0, 4.0], requires_grad=True)
    return (a * b + a).sum(), {"a": a, "b": b}


def _mlp_loss(batch=3):
    """The circles network (2-4-2 tanh, nn layers) and its cross-entropy on a fixed batch."""
    tg.manual_seed(0)
    model = circles_mlp(4)
    x = tg.Tensor(np.linspace(-1, 1, 2 * batch, dtype=np.float32).reshape(batch, 2))
    y = tg.Tensor(np.arange(batch) % 2)
    return F.cross_entropy(model(x), y), model


def test_known_model_node_count_and_labels():
    loss, model = _mlp_loss()
    g = viz.draw_graph(loss, params=model)
    # one node per Function: the loss, the two fused Linear ops and the tanh (the int target is no tensor input)
    assert [n.op for n in g.ops] == ["CrossEntropy", "Linear", "Tanh", "Linear"]
    assert {n.label: (n.shape, str(n.dtype)) for n in g.leaves} == {
        "input": ((3, 2), "float32"), "0.weight": ((4, 2), "float32"), "0.bias": ((4,), "float32"),
        "2.weight": ((2, 4), "float32"), "2.bias": ((2,), "float32")}
    assert len(g.nodes) == 9 and len(g.edges) == 8
    assert g.root.op == "CrossEntropy" and g.root.shape == () and g.nodes[1].shape == (3, 2)
    # the same network written with tensors (the lesson's autograd step): matmuls, transposes and adds
    graph = circles.step_graph("autograd", circles.CirclesConfig(n_samples=40, batch_size=4))
    assert sorted(n.op for n in graph.ops) == ["Add", "Add", "CrossEntropy", "Matmul", "Matmul", "Permute",
                                                "Permute", "Tanh"]
    assert sorted(n.label for n in graph.leaves) == ["W_h", "W_y", "b_h", "b_y", "x"]


def test_text_tree_of_a_tiny_expression():
    out, names = _tiny()
    assert out.draw(params=names).text() == (
        "Sum () float32\n"
        "└── Add (2,) float32\n"
        "    ├── Mul (2,) float32\n"
        "    │   ├── [1] a (2,) float32\n"
        "    │   └── b (2,) float32\n"
        "    └── [1] a (shown above)\n")


def test_values_and_gradients_appear_after_backward():
    out, names = _tiny()
    g = viz.draw_graph(out, names, show_values=True)  # drawn before backward, which frees the graph
    assert "grad" not in g.text()
    out.backward()
    assert g.text() == (
        "Sum () float32  data=14  grad=1\n"
        "└── Add (2,) float32  data=[4, 10]  grad=[1, 1]\n"
        "    ├── Mul (2,) float32  data=[3, 8]  grad=[1, 1]\n"
        "    │   ├── [1] a (2,) float32  data=[1, 2]  grad=[4, 5]\n"
        "    │   └── b (2,) float32  data=[3, 4]  grad=[1, 2]\n"
        "    └── [1] a (shown above)\n")


def test_shared_subgraph_is_drawn_once():
    a = tg.Tensor([0.5, -0.5], requires_grad=True)
    h = (a * 3).tanh()
    out = (h * h + h).sum()
    g = out.draw(params={"a": a})
    assert [n.op for n in g.nodes].count("Tanh") == 1 and len(g.leaves) == 1
    tanh = next(n for n in g.nodes if n.op == "Tanh")
    assert sum(src == tanh.id for src, _ in g.edges) == 3  # h * h and + h
    text = g.text()
    assert text.count("Tanh (2,) float32") == 1 and text.count("[1] Tanh (shown above)") == 2
    assert text.count("a (2,) float32") == 1  # its sub-graph is not repeated


def test_values_only_for_small_tensors():
    loss, model = _mlp_loss(batch=5)  # x and the hidden layer have 10 and 20 elements
    g = loss.draw(params=model, show_values=True)
    loss.backward()
    shown = {n.label for n in g.nodes if n.values()}
    assert shown == {"CrossEntropy", "0.weight", "0.bias", "2.weight", "2.bias"}
    weight = next(n for n in g.nodes if n.label == "0.weight")
    np.testing.assert_array_equal(weight.data, model[0].weight.detach().numpy())
    np.testing.assert_array_equal(weight.grad, model[0].weight.grad.numpy())
    g10 = viz.draw_graph(*_mlp_loss(batch=5), show_values=True, max_values=10)  # now the input is small enough
    assert {n.label for n in g10.nodes if n.values()} == shown | {"input", "Linear"}  # the (5, 2) logits too
    assert all(n.data is None for n in _tiny()[0].draw().nodes)  # values are off by default


def test_leaf_labels_without_names():
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    g = (a * tg.Tensor(2.0) + tg.Tensor([1.0, 1.0])).draw()
    assert sorted(n.label for n in g.leaves) == ["constant", "input", "input"]
    h = a.tanh()
    assert "h = Tanh (2,) float32" in (h * 2).draw(params={"h": h, "a": a}).text()  # any tensor can be named


def test_freed_graph_is_explained():
    out, names = _tiny()
    out.backward()
    with pytest.raises(viz.GraphFreedError, match=r"freed by backward\(\).*retain_graph=True"):
        out.draw()
    out, names = _tiny()
    out.backward(retain_graph=True)
    assert "grad=[4, 5]" in out.draw(params=names, show_values=True).text()


def test_dot_source_structure(tmp_path):
    loss, model = _mlp_loss()
    g = viz.draw_graph(loss, model)
    dot = g.dot()
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    assert len(re.findall(r"^  n\d+ \[label=", dot, re.M)) == len(g.nodes)
    assert sorted(re.findall(r"^  n(\d+) -> n(\d+);$", dot, re.M)) == sorted((str(s), str(d)) for s, d in g.edges)
    assert 'label="0.weight\\n(4, 2) float32", fillcolor=lightblue' in dot
    assert g.save(tmp_path / "g.dot") == str(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == dot
    assert g.save(tmp_path / "g", format="txt").endswith("g.txt")
    assert (tmp_path / "g.txt").read_text(encoding="utf-8") == g.text()
    with pytest.raises(ValueError, match=r"\.svg.*\.txt.*format="):
        g.save(tmp_path / "g.jpeg")


def test_dot_source_is_read_by_the_graphviz_package():
    graphviz = pytest.importorskip("graphviz")
    out, names = _tiny()
    source = graphviz.Source(out.draw(params=names).dot())
    assert "n3 -> n2" in source.source  # a feeds Mul


@needs_dot
def test_svg_and_png_rendering(tmp_path):
    out, names = _tiny()
    g = out.draw(params=names, show_values=True)
    out.backward()
    svg = (tmp_path / "g.svg")
    g.save(svg)
    text = svg.read_text()
    assert "<svg" in text and "Mul" in text and "grad=[4, 5]" in text
    assert g._repr_svg_().startswith("<?xml")
    assert g.save(tmp_path / "g.png") and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_graphviz_package_is_explained(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now raises ImportError
    g = _tiny()[0].draw()
    hint = r'pip install "tinygrad_course\[graph\]" and apt-get install graphviz'
    with pytest.raises(viz.GraphvizUnavailable, match=hint):
        g.save(tmp_path / "g.svg")
    assert g._repr_svg_() is None
    assert not (tmp_path / "g.svg").exists()
    g.save(tmp_path / "g.txt")  # text needs nothing


def test_missing_dot_program_is_explained(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    with pytest.raises(viz.GraphvizUnavailable, match=r"dot program.*apt-get install graphviz"):
        _tiny()[0].draw().save(tmp_path / "g.png")


def test_bad_arguments_name_the_argument():
    out, _ = _tiny()
    with pytest.raises(TypeError, match="params must be a Module or a dict"):
        out.draw(params=[1, 2])
    with pytest.raises(TypeError, match=r"params\['w'\] is a list"):
        out.draw(params={"w": [1.0]})
    with pytest.raises(TypeError, match="root must be a Tensor"):
        viz.draw_graph(np.ones(2))
    with pytest.raises(ValueError, match="max_values must be an integer >= 0"):
        out.draw(max_values=-1)


def test_circles_cli_writes_the_graph(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "circles", "--step", "autograd", "--draw-graph", "--epochs", "1", "--n-samples", "40",
                 "--batch-size", "4", "--out", str(out), "--quiet", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert f"graph: {out / 'graph.txt'}" in printed
    text = (out / "graph.txt").read_text(encoding="utf-8")
    assert text.startswith("CrossEntropy () float32  data=") and "grad=1\n" in text.splitlines()[0] + "\n"
    assert re.search(r"W_h \(4, 2\) float32  data=\[\[.*\]\]  grad=\[\[", text)
    assert "x (4, 2) float32  data=" in text  # 8 values: shown
    assert (out / "graph.svg").exists() == _has_dot()


def test_circles_cli_refuses_the_manual_step(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "circles", "--step", "manual", "--draw-graph", "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "--draw-graph: step 'manual'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any work
    with pytest.raises(ValueError, match="step 'manual' computes its gradients by hand"):
        circles.step_graph("manual")
