"""No module of the package can fail to import for the order its importers happen to run in.

Two modules may import each other at their top level as long as each takes only the other
module (``from koudai_flask.services import packing``): the name is bound at once. A cycle in
which one module takes a name out of another (``from ...backoffice import order_for``)
works only when the cycle is entered elsewhere: a host that imports the other first gets an
ImportError. Read from the source (top-level imports only; those inside functions run
later, and an import after the module's last definition finds everything already defined),
so the whole package is checked in well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import koudai_flask

ROOT = Path(koudai_flask.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def edges(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(module imported, whether a name other than a module is taken out of it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[tuple[str, bool]] = set()
    body = ast.parse(path.read_text(encoding="utf-8")).body
    defined = [
        i for i, node in enumerate(body) if not isinstance(node, ast.Import | ast.ImportFrom)
    ]
    last_definition = defined[-1] if defined else len(body) - 1
    for node in body[: last_definition + 1]:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.Import):
            found.update((alias.name, False) for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base not in known:
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                # A submodule is bound at once; any other name must be defined already.
                found.add((child, False) if child in known else (base, True))
    return sorted(found)


def cycles_with_a_name_taken() -> list[list[str]]:
    paths = modules()
    known = set(paths)
    graph = {name: edges(name, path, known) for name, path in paths.items()}
    bad: list[list[str]] = []
    for start, targets in graph.items():
        for target, takes_name in targets:
            if not takes_name or target == start:
                continue
            # A path back from the module taken from to the one taking: a cycle.
            seen, stack = {target}, [(target, [start, target])]
            while stack:
                here, trail = stack.pop()
                for following, _ in graph[here]:
                    if following == start:
                        bad.append([*trail, start])
                        stack = []
                        break
                    if following not in seen:
                        seen.add(following)
                        stack.append((following, [*trail, following]))
    return bad


def test_no_import_cycle_takes_a_name_out_of_a_module_still_loading() -> None:
    assert cycles_with_a_name_taken() == []


def test_the_check_finds_such_a_cycle_and_lets_a_late_import_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself on a package of its own: ``a`` takes a name out of ``b``, which
    imports ``a`` before defining it (flagged); ``c`` takes a name out of ``d``, which
    imports ``c`` only after its last definition (as the sandbox CLI does: not flagged)."""
    services = tmp_path / "koudai_flask" / "services"
    services.mkdir(parents=True)
    files = {
        "../__init__.py": "",
        "__init__.py": "",
        "a.py": "from koudai_flask.services.b import thing\n",
        "b.py": "from koudai_flask.services import a\nthing = 1\n",
        "c.py": "from koudai_flask.services.d import other\n",
        "d.py": "other = 2\nfrom koudai_flask.services import c  # noqa: E402\n",
    }
    for name, text in files.items():
        (services / name).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", tmp_path / "koudai_flask")
    assert cycles_with_a_name_taken() == [
        ["koudai_flask.services.a", "koudai_flask.services.b", "koudai_flask.services.a"]
    ]
