"""The shape of the Python layer (issue 15): no import cycles, modules of one idea and a readable
size, every parameter defined once (in ``fastslow.params``), and the config built from it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import fastslow as fs
from fastslow import params

PKG = Path(fs.__file__).resolve().parent
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = ["fastslow", *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every fastslow module ``name`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                root = base[: len(base) - node.level + 1]
                mod = ".".join(root + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            targets = subs if (node.level and not node.module) else [mod] + subs
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_no_import_cycles():
    mods = _modules()
    known = set(mods) | {"fastslow._core"}
    graph = {m: _imports(m, p, known) - {"fastslow"} for m, p in mods.items() if m != "fastslow"}
    # packages' __init__ only re-export their own modules: an import of the package stands for them
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n.startswith(m + "."):
                continue  # a package importing its own modules
            if state.get(n) == 1:
                cyc = stack[stack.index(n):] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cyc))
            if state.get(n) is None:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if state.get(m) is None:
            visit(m)


def test_ground_floor_imports_nothing_above_it():
    mods = _modules()
    known = set(mods) | {"fastslow._core"}
    for low in ("fastslow._validate", "fastslow._runtime", "fastslow.params", "fastslow.trajectory",
                "fastslow._version", "fastslow._persist"):
        deps = _imports(low, mods[low], known) - {"fastslow._validate", "fastslow._core"}
        assert not deps, f"{low} imports {sorted(deps)}"


def test_modules_have_a_readable_size():
    too_long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_config_fields_are_the_registry():
    """Every config field is a registry parameter of the same path, and every config parameter of
    the registry is a field: the config defines no parameter of its own."""
    seen = set()

    def walk(obj: object, prefix: str) -> None:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            path = f"{prefix}.{f.name}" if prefix else f.name
            if "section" in f.metadata:
                walk(getattr(obj, f.name), path)
                continue
            p = f.metadata["param"]
            assert p is params.PARAMS[path], path
            assert getattr(obj, f.name) == p.default, path
            seen.add(path)

    walk(fs.Config(), "")
    assert seen == {p.path for p in params.PARAMS.values() if p.in_config}


def test_no_second_vocabulary_of_parameters():
    """No module but the registry holds a table about parameters: no dict display mapping two or
    more registered parameters (short names or config paths) to strings, like the old
    ``sweep.ALIASES`` (name -> path) or ``plotting._param_label`` (name -> label); everything else
    asks ``params.lookup``. (Dicts of values, such as a config's, are data, not vocabulary.)"""
    names = {p.path for p in params.PARAMS.values()} | {p.short for p in params.PARAMS.values() if p.short}
    names -= {"n", "d"}  # too short to tell a table of parameters from any other dict
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.name == "params.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict):
                continue
            hits = {k.value for k, v in zip(node.keys, node.values)
                    if isinstance(k, ast.Constant) and k.value in names
                    and isinstance(v, ast.Constant) and isinstance(v.value, str)}
            if len(hits) >= 2:
                offenders.append(f"{path.relative_to(PKG)}:{getattr(node, 'lineno', '?')}: {sorted(hits)}")
    assert not offenders, offenders


@pytest.mark.parametrize("name, path", [("a0", "init.a0"), ("c3", "model.target.3"), ("s2", "model.activation.2"),
                                        ("model.target.12", "model.target.12"), ("B", "sgd.batch"),
                                        ("eps", "model.eps"), ("seed", "sgd.seed")])
def test_lookup_resolves_every_spelling(name, path):
    assert params.lookup(name).path == path


def test_lookup_refuses_with_a_suggestion():
    with pytest.raises(ValueError, match=r"x: unknown parameter 'lr_aa'; did you mean 'lr_a'\?"):
        params.lookup("lr_aa", field="x")
    with pytest.raises(TypeError, match="x: a parameter name must be a string"):
        params.lookup(3, field="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Hermite order"):
        params.lookup("c1001")
