"""The layout's rules, checked by reading the source (README "Layout")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MESSAGING = ROOT / "messaging"
# Entry points that wire the domains to the outside: they may import anything.
OUTER = {"http", "cli.py", "__init__.py"}


def _modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module or "", [alias.name for alias in node.names]))
    return found


def _inner_modules():
    for path, tree in _modules(MESSAGING):
        if path.relative_to(MESSAGING).parts[0] not in OUTER:
            yield path, tree


def test_domains_do_not_import_the_web_layer_or_the_workers():
    problems = []
    for path, tree in _inner_modules():
        for module, names in _imports(tree):
            top = module.split(".")
            if module.startswith("messaging.http") or top[0] == "workers":
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
            if module == "flask" and {"request", "url_for", "session", "g"} & set(names):
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(names)} from flask")
    assert problems == []


def test_lib_imports_neither_flask_nor_the_database():
    problems = []
    for path, tree in _modules(MESSAGING / "lib"):
        for module, _names in _imports(tree):
            if module.split(".")[0] in {"flask", "sqlalchemy", "flask_sqlalchemy", "redis", "rq"}:
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
            if module.startswith("messaging.") and not module.startswith("messaging.lib"):
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
    assert problems == []


def test_only_the_dialect_module_asks_which_database_it_runs_on():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(MESSAGING.rglob("*.py"))
        if "dialect.name" in path.read_text(encoding="utf-8") and path != MESSAGING / "db" / "dialect.py"
    ]
    assert offenders == []


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_no_view_dispatches_work_after_its_commit():
    """Work that follows a commit goes through ``messaging.db.after_commit``, never a view."""
    offenders = []
    for path, tree in _modules(MESSAGING / "http"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node).startswith(("dispatch", "enqueue")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {_called_name(node)}")
    assert offenders == []


def test_domain_refusals_carry_no_http_status():
    offenders = []
    for path, tree in _inner_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in {"ApiError", "abort"}:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.id}")
    assert offenders == []


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def test_nothing_outside_a_module_uses_its_private_names():
    """``from x import _name`` or ``x._name`` in another module or a test: a private function
    used elsewhere is the public API of a module that does not exist yet."""
    offenders = []
    for folder in (MESSAGING, ROOT / "workers", ROOT / "tests"):
        for path, tree in _modules(folder):
            where = path.relative_to(ROOT)
            modules = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("messaging"):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            offenders.append(f"{where}:{node.lineno} {alias.name}")
                        elif _is_module(f"{node.module}.{alias.name}"):
                            modules.add(alias.asname or alias.name)
                elif isinstance(node, ast.Import):
                    modules |= {a.asname for a in node.names if a.asname and a.name.startswith("messaging")}
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in modules
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    offenders.append(f"{where}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []


def test_importing_the_domains_runs_nothing():
    """Listeners and registrations are installed by ``create_app``, not by importing a module."""
    import subprocess
    import sys

    code = """
import importlib, pkgutil, messaging
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
for info in pkgutil.walk_packages(messaging.__path__, "messaging."):
    if not info.name.startswith("messaging.http"):
        importlib.import_module(info.name)
from messaging.db import after_commit, dialect, tenancy
from messaging.imports.handlers import HANDLERS
assert HANDLERS == {}, HANDLERS
assert not event.contains(Session, "after_commit", after_commit._run)
assert not event.contains(Session, "do_orm_execute", tenancy._scope_queries)
assert not event.contains(Engine, "connect", dialect._sqlite_pragmas)
print("clean")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "clean", out.stderr[-2000:]
