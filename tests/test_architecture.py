"""The package's layering, read from its source: no import cycle among wala's modules (imports inside
functions count too), and no code outside wala/conditions/ that branches on a condition kind's name."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "wala"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The wala modules `path` imports anywhere in its body (`from a.b import c` names a.b.c when that is
    a module, else a.b; a package's __init__ counts as imported with any module under it)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}".rstrip(".")
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            while target.startswith("wala."):  # the module and the packages Python runs on the way to it
                if target != name and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_module_of_wala_imports_itself_through_others():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_modules(p, modules) for p in paths}
    assert graph["wala.cli"], "the import reader found nothing: it is broken, not the package clean"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def kind_name_comparisons(source: str, names: set[str]) -> list[int]:
    """Lines comparing something with a literal condition kind name (`== "pointcloud"`, `in ("image", …)`)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        for operand in [node.left, *node.comparators]:
            literals = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
            if any(isinstance(x, ast.Constant) and x.value in names for x in literals):
                lines.append(node.lineno)
    return lines


def test_only_the_conditions_package_branches_on_a_kind_name():
    from wala.conditions import CONDITIONS

    names = set(CONDITIONS)
    found = {
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if "conditions" not in path.relative_to(PACKAGE).parts
        for line in kind_name_comparisons(path.read_text(), names)
    }
    assert not found, f"branches on a condition kind's name (make it a ConditionKind field): {sorted(found)}"


def test_the_kind_name_finder_finds_branches():
    code = 'if kind == "voxel" or x in ("a", "image") or "text" != y:\n    pass\nz = {"depth": 1}\n'
    assert kind_name_comparisons(code, {"voxel", "image", "text", "depth"}) == [1, 1, 1]
