"""The package's shape: no import cycle (function-level imports included), option names
only where they are declared, no test importing another test module, files of a readable size."""

import ast
import re
from pathlib import Path

import segkit.options
import segkit.settings

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "segkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every segkit module this file imports, at any depth of the code (functions included)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("segkit"))
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if not target.startswith("segkit"):
                continue
            for alias in node.names:  # `from . import video` names a module, `from .x import f` a name in x
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (REPO / Path(*candidate.split("."))).with_suffix(".py").exists()
                          or (REPO / Path(*candidate.split(".")) / "__init__.py").exists() else target)
    return {name for name in found if name != module_name(path)}


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_segkit_has_no_import_cycle():
    edges = graph()
    # a package's __init__ runs before its modules: importing a package imports its __init__
    for name in list(edges):
        edges[name] = {dep for dep in edges[name] if dep in edges}
    state: dict[str, str] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = "open"
        for dep in sorted(edges[node]):
            if state.get(dep) == "open":
                cycle.extend(path[path.index(dep):] + [node, dep] if dep in path else [node, dep])
                return True
            if dep not in state and visit(dep, path + [node]):
                return True
        state[node] = "done"
        return False

    for node in sorted(edges):
        if node not in state and visit(node, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_the_check_sees_function_level_imports():
    """The graph must include imports inside functions, or a hidden cycle would pass."""
    assert "segkit.models.modnet.convert" in graph()["segkit.models.weights"]


def test_option_names_appear_only_where_they_are_declared():
    """Adding an option is adding a field in segkit/options.py: no other module spells the names
    as strings, parameters or keywords (the ComfyUI node's literal declaration of the seed's inputs
    is the one exception). Reading a value off the typed ``Options`` (``options.alpha_matting``)
    is how the pipeline uses it, and is allowed. "model", "background" and "prompt" are everyday
    words and are left out of the search."""
    names = [name for name in segkit.options.names() if name not in ("model", "background", "prompt")]
    allowed = {PACKAGE / "options.py", PACKAGE / "comfy.py"}
    sources = [*PACKAGE.rglob("*.py"), REPO / "app.py", *(REPO / "ui").glob("*.py")]
    for path in sources:
        if path in allowed:
            continue
        text = path.read_text()
        for name in names:
            assert not re.search(rf"(?<![.\w]){name}\b", text), f"{path.relative_to(REPO)} spells the option {name}"


def test_settings_are_read_only_through_their_declaration_and_all_are_documented():
    """Each SEGKIT_* number, switch or choice is declared once in segkit/settings.py and read through
    it (so a wrong value is named the same way everywhere); the README's Settings table lists them all."""
    declared = set(segkit.settings.SETTINGS)
    sources = [*PACKAGE.rglob("*.py"), REPO / "app.py", *(REPO / "ui").glob("*.py")]
    for path in sources:
        if path != PACKAGE / "settings.py":
            read_here = set(re.findall(r"getenv\(\s*[\"'](SEGKIT_\w+)", path.read_text()))
            assert not read_here & declared, f"{path.relative_to(REPO)} reads {read_here & declared} itself"
    table = (REPO / "README.md").read_text().split("## Settings", 1)[1]
    first_cells = "".join(re.findall(r"^\|([^|]*)\|", table, re.M))
    documented = set(re.findall(r"`(SEGKIT_\w+)`", first_cells))
    documented |= {f"SEGKIT_MAX_VIDEO_{suffix}" for suffix in ("SECONDS", "PIXELS", "MB")}  # one row for the three
    assert declared <= documented, declared - documented


def test_no_test_module_imports_another():
    for path in (REPO / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.startswith(("test_", "conftest")) for m in modules), (path.name, modules)


def test_source_files_stay_readable():
    """About 300 lines at most; the numba kernels of matting are one algorithm in loops numba can
    compile, and may run longer."""
    long = {str(p.relative_to(REPO)): n for p in [*PACKAGE.rglob("*.py"), REPO / "app.py", *(REPO / "ui").glob("*.py")]
            if (n := len(p.read_text().splitlines())) > 330 and p.name != "_matting_kernels.py"}
    assert not long, long


def test_the_keyword_types_list_every_declared_option():
    """``OptionValues`` (what editors show for segment()/process() keywords) matches ``Options``."""
    assert list(segkit.options.OptionValues.__annotations__) == segkit.options.names()
