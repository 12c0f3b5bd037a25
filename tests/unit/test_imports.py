"""Import direction of the ``tmt`` package: every import points down the layers, and none forms a
cycle (DESIGN.md, "Layout": modality -> vocab and codecs -> translator -> bundle -> data, eval ->
train, backtranslate -> cli).

The imports are read from the source with ``ast`` (nothing is imported), including those inside
functions, which Python resolves late but which still tie the two modules together; imports under
``if TYPE_CHECKING:`` are annotations only and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tmt"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("tmt.errors", "tmt.files", "tmt.precision", "tmt.compiling", "tmt.kernels", "tmt.paths",
     "tmt.progress", "tmt.version", "tmt.validate"),
    ("tmt.modality",),
    ("tmt.vocab", "tmt.speech", "tmt.image", "tmt.text"),
    ("tmt.translator",),
    ("tmt.bundle",),
    ("tmt.data", "tmt.eval"),
    ("tmt.train", "tmt.backtranslate", "tmt.demo"),
    ("tmt.cli", "tmt.__main__", "tmt"),
)
"""Bottom to top. A module may import its own layer or any lower one. ``tmt`` itself (the public
API of ``tmt/__init__.py``) sits at the top: it loads a bundle for the caller."""

MODALITY_PACKAGES = ("tmt.speech", "tmt.image", "tmt.text", "tmt.translator")
"""Inference and model definitions only: no optimiser, no training loop, no argparse."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, index = "", -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > len(best):
                best, index = prefix, i
    assert index >= 0, f"{module} belongs to no layer: add it to LAYERS"
    return index


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """Line numbers of the statements under ``if TYPE_CHECKING:``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def resolve(name: str) -> str | None:
    """The ``tmt`` module an imported name lives in (a submodule, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported tmt module) for every runtime import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_blocks(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from tmt import precision` names a submodule, `from tmt.x import f` a module
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        for name in names:
            target = resolve(name) if name.startswith("tmt") else None
            if target is not None and target != module:
                found.append((node.lineno, target))
    return sorted(set(found))


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def test_every_import_points_down_the_layers():
    upward = [
        f"{where(m, line)} imports {target} (layer {layer_of(target)} above {layer_of(m)})"
        for m in MODULES for line, target in imports(m)
        if layer_of(target) > layer_of(m)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(module: str, path: list[tuple[str, int]]) -> None:
        state[module] = 1
        for line, target in graph[module]:
            if state.get(target) == 1:
                start = next(i for i, (m, _) in enumerate(path) if m == target) if any(
                    m == target for m, _ in path) else len(path)
                loop = [*path[start:], (module, line)]
                cycles.append(" -> ".join(where(m, n) for m, n in loop) + f" -> {target}")
            elif target not in state:
                visit(target, [*path, (module, line)])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modality_packages_hold_no_training_code():
    # training belongs in tmt.train.codecs; these packages are what inference loads
    banned = ("torch.optim", "argparse", "tmt.train")
    found = []
    for module, path in MODULES.items():
        if not module.startswith(MODALITY_PACKAGES):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            text = ""
            if isinstance(node, ast.Import | ast.ImportFrom):
                text = ast.unparse(node)
            elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith("torch.optim"):
                text = ast.unparse(node)
            if any(word in text for word in banned):
                found.append(f"{where(module, node.lineno)}: {text}")
    assert not found, "training code in an inference package:\n" + "\n".join(sorted(set(found)))


def test_every_torch_load_refuses_pickled_code():
    """torch.load(..., weights_only=True) everywhere: a checkpoint cannot run code."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"):
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                           and k.value.value is True for k in node.keywords)
                if not safe:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, offenders
