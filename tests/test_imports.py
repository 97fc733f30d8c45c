"""The import graph of the tree (every ``import``, at module level or inside a function): no
cycles among ``meta_evo`` modules, and the kernels (the folder ``kernels/``, imported as
``meta_evo.kernels``) never import the rest of ``meta_evo`` (the measurement kernels stay pure).
Read from the source with :mod:`ast`, nothing imported."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules() -> dict[str, Path]:
    out = {}
    for folder, pkg in (("meta_evo", ("meta_evo",)), ("kernels", ("meta_evo", "kernels"))):
        for p in (ROOT / folder).rglob("*.py"):
            parts = pkg + p.relative_to(ROOT / folder).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def edges(name: str, path: Path, known: dict) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` depends on pkg.sub (as ``import pkg.sub`` does), not on pkg
            subs = [f"{mod}.{a.name}" for a in node.names]
            cands = [c for c in subs if c in known] or [mod]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in known:
                c = c.rsplit(".", 1)[0] if "." in c else ""
            if c and c != name:
                out.add(c)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: edges(m, p, known) for m, p in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_known_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    g = graph()
    assert "meta_evo.engine" in g and "meta_evo.driver" in g
    assert cycles(g) == []


def test_kernels_never_import_meta_evo():
    g = graph()
    inside = lambda m: m == "meta_evo.kernels" or m.startswith("meta_evo.kernels.")
    assert "meta_evo.kernels.power" in g and "meta_evo.kernels.emergence" in g["meta_evo.kernels"]
    bad = {m: sorted(d for d in deps if d.startswith("meta_evo") and not inside(d))
           for m, deps in g.items() if inside(m)}
    assert {m: d for m, d in bad.items() if d} == {}


def test_one_path_from_cli_to_engine():
    """run, sweep, resume and analyze reach the engine's programs; nothing else jits the
    meta-generation (Meta builds pure functions only)."""
    g = graph()
    one = g["meta_evo.single_run"]
    assert "meta_evo.engine" in one and "meta_evo.driver" in one
    assert "meta_evo.engine" in g["meta_evo.sweep"] and "meta_evo.driver" in g["meta_evo.sweep"]
    assert "meta_evo.engine" in g["meta_evo.analysis"]
    meta_src = (ROOT / "meta_evo" / "meta.py").read_text()
    assert "jax.jit" not in meta_src and "jit_chunk" not in meta_src


def _imports_anywhere(path: Path) -> set[str]:
    """Every module name imported in a file (absolute names; relative ones resolved)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.add(node.module or "")
    return out


def test_rundir_imports_no_jax():
    """The run-directory floor (layout, io, store, signals) works on files alone: no JAX, and of
    meta-evo only the error class and the lock."""
    files = sorted((ROOT / "meta_evo" / "rundir").glob("*.py"))
    assert {p.name for p in files} >= {"layout.py", "io.py", "store.py", "signals.py"}
    for p in files:
        names = _imports_anywhere(p)
        assert not {n for n in names if n == "jax" or n.startswith(("jax.", "flax", "chex"))}, p
        ours = {n for n in names if n.startswith("meta_evo")}
        assert ours <= {"meta_evo.errors", "meta_evo.lock"} | {
            n for n in ours if n.startswith("meta_evo.rundir")}, (p, ours)


LOWER = ("meta_evo.kernels", "meta_evo.tasks", "meta_evo.agents", "meta_evo.learners",
         "meta_evo.registry", "meta_evo.strategies", "meta_evo.meta", "meta_evo.engine",
         "meta_evo.driver", "meta_evo.measure", "meta_evo.rundir")
UPPER = ("meta_evo.single_run", "meta_evo.sweep", "meta_evo.cli", "meta_evo.child_sweeps",
         "meta_evo.run_reader",
         "meta_evo.analysis", "meta_evo.results", "meta_evo.report", "meta_evo.plan",
         "meta_evo.progress", "meta_evo.tracking", "meta_evo.arm_progress", "meta_evo.snapshot",
         "meta_evo.rollout")


def test_lower_floors_never_import_upper_floors():
    """The floors below the experiment (kernels, tasks, agents, learners, the meta-optimizer,
    the engine, the driver, the measurement, the run directory) import nothing above them."""
    def under(m, prefixes):
        return any(m == p or m.startswith(p + ".") for p in prefixes)

    bad = {m: sorted(d for d in deps if under(d, UPPER))
           for m, deps in graph().items() if under(m, LOWER)}
    assert {m: d for m, d in bad.items() if d} == {}
