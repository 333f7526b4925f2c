"""The package's import structure: no import circles, no private module of one subpackage
imported by another (each subpackage is used through its public names)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tomopipe"


def _modules():
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(mods):
    """Edges module → imported tomopipe module (top-level and function-level imports alike)."""
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            edges[m] |= {t for t in targets if t in mods and t != m}
    return edges


def test_no_import_circles():
    edges = _imports(_modules())
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_imports_across_subpackages():
    mods = _modules()
    bad = []
    for m, targets in _imports(mods).items():
        home = m.split(".")[:2]
        for t in targets:
            parts = t.split(".")
            private = [i for i, x in enumerate(parts) if x.startswith("_") and not x.startswith("__")]
            if not private:
                continue
            owner = parts[: private[0]]  # the package the private module belongs to
            if owner != ["tomopipe"] and home[: len(owner)] != owner:
                bad.append(f"{m} imports {t}")
    assert not bad, "\n".join(sorted(bad))
