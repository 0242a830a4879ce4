"""Draw the autograd graph that ends at a tensor (usually a loss): `draw_graph(loss)` or `loss.draw()`.

What is drawn: one node per Function (the op's class name, its output's shape and dtype) and one per
leaf, with an edge from each input to the op that used it, from the leaves down to the root. A leaf
found in `params` (a Module's named_parameters, or any dict name -> Tensor) is labelled with its
name; any other leaf is an "input", or a "constant" when it is a 0-d tensor that needs no gradient.
With `show_values=True`, tensors of at most `max_values` elements also show their data and their
gradient, as in the micrograd lesson.

    g = loss.draw(params=model, show_values=True)   # record the graph ...
    loss.backward()                                 # ... then backward (it frees the graph)
    print(g.text())                                 # the gradients appear: read when printed
    g.save("graph.svg")                             # or .png/.pdf (Graphviz), .dot or .txt (no Graphviz)

Why before backward: `backward()` frees the graph it walked (each node drops its inputs), so there is
nothing left to draw afterwards and `draw_graph` says so; `backward(retain_graph=True)` keeps it.
The returned Graph holds the structure (and the tensors), so saving it after backward works. Data
are copied when the graph is drawn (the values the forward used, even if an optimizer step changes
the weights later); gradients are read when it is saved or printed. With show_values, small intermediate tensors are
asked to keep their gradient (`retain_grad()`), so those appear too, not only the leaves'.

Output: `Graph.text()` is a plain-text tree (always available; a sub-graph used twice is printed once,
then referred to by its [number]); `Graph.dot()` the Graphviz source; `.svg`, `.png` and `.pdf` need
the optional `graphviz` Python package (`pip install "tinygrad_course[graph]"`) and Graphviz's `dot`
program (Debian/Ubuntu: `apt-get install graphviz`). In a notebook a Graph shows itself as SVG.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .tensor import Tensor

INSTALL_HINT = ('install them with pip install "tinygrad_course[graph]" and apt-get install graphviz (Debian/Ubuntu; '
                'elsewhere see https://graphviz.org/download/); .txt and .dot files need neither')
RENDERED = ("svg", "png", "pdf")  # formats that need Graphviz
WRITTEN = ("txt", "dot", "gv")  # formats written without it


class GraphvizUnavailable(RuntimeError):
    """Rendering (svg, png, pdf) needs the graphviz Python package and the dot program."""


class GraphFreedError(RuntimeError):
    """The graph was freed by backward() before it was drawn."""


@dataclass
class Node:
    """One Function (op) or leaf tensor of the graph; `inputs` are node ids in argument order."""
    id: int
    tensor: Tensor = field(repr=False)
    op: str | None  # the Function's class name; None for a leaf
    name: str | None  # from `params`
    shape: tuple
    dtype: np.dtype
    inputs: list = field(default_factory=list)
    data: np.ndarray | None = field(default=None, repr=False)  # copied when drawn, with show_values

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    @property
    def label(self) -> str:
        if self.op is not None:
            return f"{self.name} = {self.op}" if self.name else self.op
        if self.name:
            return self.name
        constant = self.tensor.ndim == 0 and not self.tensor.requires_grad
        return "constant" if constant else "input"

    @property
    def grad(self) -> np.ndarray | None:
        """The tensor's gradient now (None before backward); shown only next to `data`."""
        g = self.tensor.grad
        return None if g is None or self.data is None else g.detach().numpy()

    def describe(self) -> str:
        return f"{self.label} {tuple(self.shape)} {self.dtype}"

    def values(self) -> list[str]:
        """["data=...", "grad=..."] when the values are shown, else []."""
        if self.data is None:
            return []
        shown = [f"data={_fmt(self.data)}"]
        if self.grad is not None:
            shown.append(f"grad={_fmt(self.grad)}")
        return shown


def _fmt(array) -> str:
    # 4 significant digits, no alignment padding; one line (rows of a matrix are joined by a space)
    text = np.array2string(np.asarray(array), separator=", ", max_line_width=10 ** 6,
                           formatter={"float_kind": lambda v: f"{v:.4g}"})
    return " ".join(text.split())


class Graph:
    """The graph drawn by `draw_graph`: `nodes` (root first, node.id is its index) and `edges`
    (input id, op id). `text()`, `dot()`, `save(path)`; `ops` and `leaves` split the nodes."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.edges = [(i, n.id) for n in nodes for i in n.inputs]

    @property
    def root(self) -> Node:
        return self.nodes[0]

    @property
    def ops(self) -> list[Node]:
        return [n for n in self.nodes if not n.is_leaf]

    @property
    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if n.is_leaf]

    def __repr__(self):
        return f"<Graph of {self.root.describe()}: {len(self.ops)} ops, {len(self.leaves)} leaves>"

    def __str__(self):
        return self.text()

    def text(self) -> str:
        """The tree from the root to the leaves, one line per node; a node reached again (a shared
        sub-graph, a tensor used twice) is printed once, numbered, then referred to by its number."""
        uses = {}
        for src, _ in self.edges:
            uses[src] = uses.get(src, 0) + 1
        refs, printed, lines = {}, set(), []
        stack = [(0, "", "")]  # (node id, prefix of this line, prefix of its children's lines)
        while stack:  # iterative: a long chain of ops must not hit the recursion limit
            node_id, head, tail = stack.pop()
            node = self.nodes[node_id]
            if node_id in printed:
                lines.append(f"{head}[{refs[node_id]}] {node.label} (shown above)")
                continue
            printed.add(node_id)
            tag = ""
            if uses.get(node_id, 0) > 1:
                refs[node_id] = len(refs) + 1
                tag = f"[{refs[node_id]}] "
            lines.append("  ".join([f"{head}{tag}{node.describe()}"] + node.values()))
            last = len(node.inputs) - 1
            for k, child in reversed(list(enumerate(node.inputs))):  # pushed in reverse: popped in order
                branch, below = ("└── ", "    ") if k == last else ("├── ", "│   ")
                stack.append((child, tail + branch, tail + below))
        return "\n".join(lines) + "\n"

    def dot(self) -> str:
        """The Graphviz (DOT) source: inputs above, the root at the bottom; parameters in blue."""
        out = ["digraph autograd {", '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
        for n in self.nodes:
            colour = ("darkolivegreen1" if n.id == 0 else "lightgrey" if not n.is_leaf
                      else "lightblue" if n.name else "white")
            shape = "" if not n.is_leaf else ", shape=box, style=filled"  # leaves: square corners
            label = "\\n".join(_dot_escape(s) for s in [n.label, f"{tuple(n.shape)} {n.dtype}"] + n.values())
            out.append(f'  n{n.id} [label="{label}", fillcolor={colour}{shape}];')
        out += [f"  n{src} -> n{dst};" for src, dst in self.edges]
        return "\n".join(out) + "\n}\n"

    def save(self, path, format: str | None = None) -> str:
        """Write the graph to `path` in `format` (default: the path's suffix) and return the path.
        .txt and .dot are written directly; .svg, .png and .pdf are rendered by Graphviz."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1][1:].lower()
        fmt = (format or suffix).lower()
        if format and not suffix:
            path = f"{path}.{fmt}"
        if fmt == "txt":
            content = self.text().encode("utf-8")
        elif fmt in ("dot", "gv"):
            content = self.dot().encode("utf-8")
        elif fmt in RENDERED:
            content = self.render(fmt)
        else:
            raise ValueError(f"save: cannot write {path!r} as {fmt or 'a file without a suffix'!r}; use a path "
                             f"ending in one of {', '.join('.' + f for f in RENDERED + WRITTEN)} or pass format=")
        from .checkpoint import write_atomically
        write_atomically(path, lambda f: f.write(content))
        return path

    def render(self, format: str = "svg") -> bytes:
        """The picture as bytes of `format` (svg, png, pdf), drawn by Graphviz."""
        try:
            import graphviz
        except ImportError:
            raise GraphvizUnavailable(f"drawing {format} needs the graphviz Python package and the dot program; "
                                      f"{INSTALL_HINT}") from None
        try:
            return graphviz.Source(self.dot()).pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise GraphvizUnavailable(f"drawing {format} needs Graphviz's dot program on the PATH; "
                                      f"{INSTALL_HINT}") from None

    def _repr_svg_(self):
        """Jupyter shows the picture when Graphviz is installed (None: it falls back to the text)."""
        try:
            return self.render("svg").decode("utf-8")
        except GraphvizUnavailable:
            return None


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _names(params) -> dict:
    """id(tensor) -> name, from a Module (its named_parameters) or a dict name -> Tensor."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items = list(params.named_parameters())
    elif isinstance(params, dict):
        items = list(params.items())
    else:
        raise TypeError(f"draw_graph: params must be a Module or a dict name -> Tensor "
                        f"(e.g. dict(model.named_parameters())), got {type(params).__name__}")
    names = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"draw_graph: params[{name!r}] is a {type(t).__name__}, not a Tensor")
        names.setdefault(id(t), str(name))  # a tensor given twice (tied weights) keeps its first name
    return names


def draw_graph(root: Tensor, params=None, *, show_values: bool = False, path=None, format: str | None = None,
               max_values: int = 8) -> Graph:
    """The autograd graph from `root` back to the leaves, as a Graph (see the module docstring).

    params: a Module or a dict name -> Tensor, to name the leaves (any tensor may be named this way,
    e.g. {"x": x}). show_values: show data and gradient of the tensors with at most `max_values`
    elements (and make those that are not leaves keep their gradient). path: also save the graph
    there at once (format from the suffix, or `format`). Draw before `backward()` (which frees the
    graph) or after `backward(retain_graph=True)`.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"draw_graph: root must be a Tensor (e.g. the loss), got {type(root).__name__}")
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 0:
        raise ValueError(f"draw_graph: max_values must be an integer >= 0, got {max_values!r}")
    names = _names(params)
    ids, nodes, stack = {id(root): 0}, [], [root]
    while stack:  # depth first from the root; node ids in the order first reached
        t = stack.pop()
        ctx = t._ctx
        if ctx is not None and ctx.parents is None:
            raise GraphFreedError(
                f"draw_graph: the graph through {type(ctx).__name__} was freed by backward(); draw it before "
                "backward (g = loss.draw(); loss.backward(); g.save(...) still shows the gradients) or call "
                "backward(retain_graph=True)")
        small = show_values and t.numel() <= max_values
        node = Node(ids[id(t)], t, type(ctx).__name__ if ctx is not None else None, names.get(id(t)), t.shape,
                    t.dtype, data=t.detach().numpy().copy() if small else None)
        if small and ctx is not None and t.requires_grad:
            t.retain_grad()  # so that its gradient is there to show after backward
        nodes.append(node)
        for p in (ctx.parents if ctx is not None else ()):
            if p is None:  # a non-tensor argument (a scalar, an array of class indices)
                continue
            if id(p) not in ids:
                ids[id(p)] = len(ids)
                stack.append(p)
            node.inputs.append(ids[id(p)])
    nodes.sort(key=lambda n: n.id)
    graph = Graph(nodes)
    if path is not None:
        graph.save(path, format)
    return graph
