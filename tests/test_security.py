"""Security: who may read the files cqrs creates, and how its SQL is built.

- Journal, projection, their -wal and -shm, exports and backups are created readable
  by their owner only (0600; the home folder 0700), or stricter when the umask is.
- SQL is built from constants only: user data reaches SQLite as bound parameters. A
  static check over cqrs_cli/ follows every string that reaches execute() (or a helper
  that passes its argument on to it) back to where it comes from, and fails on anything
  that is not built from literals and module constants.
- A path is a path: URI metacharacters in a file name (?, #, %) name that file.
"""

from __future__ import annotations

import ast
import json
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from common import SUBPROCESS_TIMEOUT, child_env, run_cqrs
from reliability_helpers import with_umask

import cqrs_cli

# --- File permissions -----------------------------------------------------------------------------

# Runs in a child with the umask under test: writes through cqrs's own code, keeps a
# connection to each file open so that their -wal and -shm stay, exports and backs up
# the journal, and prints every file's mode.
MAKE_FILES = """
import json, os, sys
from cqrs_cli import CommandService, QueryService
from cqrs_cli.cli.main import run

home = sys.argv[1]
assert run(["item", "create", "Item1", "-d", "first"]) == 0
with CommandService(home) as writer:
    writer.create_item("Item2")  # the journal stays open: its -wal and -shm stay
    with QueryService(home) as reader:
        reader.sync()
        reader.get_item("Item1")  # the projection stays open too
        writer.create_item("Item3")
        QueryService(home).sync()
        assert run(["journal", "export", os.path.join(home, "export.ndjson")]) == 0
        assert run(["journal", "backup", os.path.join(home, "backup.db")]) == 0
        modes = {}
        for name in ["."] + sorted(os.listdir(home)):
            modes[name] = oct(os.stat(os.path.join(home, name)).st_mode & 0o777)
print(json.dumps(modes))
"""

EXPECTED_FILES = {
    ".",
    "journal.db",
    "journal.db-wal",
    "journal.db-shm",
    "projection.db",
    "projection.db-wal",
    "projection.db-shm",
    "export.ndjson",
    "backup.db",
}


@pytest.mark.parametrize(
    ("umask", "folder_mode", "file_mode"),
    [
        (0o022, 0o700, 0o600),
        (0o002, 0o700, 0o600),
        (0o000, 0o700, 0o600),
        (0o077, 0o700, 0o600),
        (0o027, 0o700, 0o600),
        (0o277, 0o500, 0o400),
    ],
    ids=lambda value: f"{value:04o}" if isinstance(value, int) else None,
)
def test_files_are_created_for_their_owner_only(
    tmp_path: Path, umask: int, folder_mode: int, file_mode: int
) -> None:
    home = tmp_path / "new-home"
    child = subprocess.run(
        [sys.executable, "-c", MAKE_FILES, str(home)],
        capture_output=True,
        text=True,
        env=child_env(home),
        preexec_fn=with_umask(umask),
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    modes = {name: int(mode, 8) for name, mode in json.loads(child.stdout.splitlines()[-1]).items()}
    assert set(modes) >= EXPECTED_FILES, modes
    expected = {name: file_mode for name in modes}  # any other file (a backup's -wal) too
    expected["."] = folder_mode
    assert modes == expected, {name: oct(mode) for name, mode in modes.items()}


def test_a_journal_named_in_an_existing_shared_folder_is_still_private(
    tmp_path: Path, cqrs_exe: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    journal, projection = shared / "j.db", shared / "p.db"
    env = child_env()
    argv = ["--journal", str(journal), "--projection", str(projection)]
    assert run_cqrs(cqrs_exe, *argv, "item", "create", "A", env=env).returncode == 0
    assert run_cqrs(cqrs_exe, *argv, "sync", env=env).returncode == 0
    for path in (journal, projection):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777, "cqrs changed a folder it did not create"


URI_NAMES = ["j?mode=rwc.db", "j#fragment.db", "j%3f.db", "j%.db", "j'quote\".db", "j;x .db"]


@pytest.mark.parametrize("name", URI_NAMES)
def test_uri_metacharacters_in_a_file_name_name_that_file(
    tmp_path: Path, cqrs_exe: str, name: str
) -> None:
    journal, projection = tmp_path / name, tmp_path / f"projection-{name}"
    env = child_env()
    argv = ["--journal", str(journal), "--projection", str(projection)]
    assert run_cqrs(cqrs_exe, *argv, "item", "create", "A", env=env).returncode == 0
    synced = run_cqrs(cqrs_exe, *argv, "sync", env=env)
    assert synced.returncode == 0, synced.stderr
    listed = run_cqrs(cqrs_exe, *argv, "item", "list", env=env)
    assert listed.stdout == b"A\n"
    verified = run_cqrs(cqrs_exe, *argv, "journal", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    main_files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert main_files == sorted([name, f"projection-{name}"])


# --- SQL is built from constants only -------------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "executescript"}
NUMERIC_CALLS = {"len", "int", "float", "bool", "round", "abs"}
"""Calls whose result is a number (or bool), which cannot carry SQL text."""
TEXT_TRANSFORMS = {
    "join",
    "split",
    "strip",
    "lower",
    "upper",
    "replace",
    "format",
    "items",
    "keys",
    "values",
    "removeprefix",
    "removesuffix",
}
"""Methods whose result is built from their receiver and arguments only."""
PASS_THROUGH = {"str", "list", "tuple", "sorted", "statements"}
"""Functions returning their argument's text, reshaped (statements: projection/store.py
splits a script constant into statements)."""
CONSTANT_ATTRIBUTES = {("spec", "app_id"), ("spec", "schema_version")}
"""FileSpec fields: each FileSpec is built once, at module level, from integer constants
(checked by test_file_specs_are_module_constants)."""


@dataclass
class Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    module: str
    parent: Function | None
    class_methods: frozenset[str]
    is_method: bool
    bindings: dict[str, list[tuple[str, ast.expr | None]]] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        args = self.node.args
        names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
        return names[1:] if self.is_method else names


@dataclass
class Module:
    name: str
    tree: ast.Module
    constants: dict[str, ast.expr]
    imports: dict[str, tuple[str, str]]


def _is_type_checking(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and (node.test.id == "TYPE_CHECKING")
    )


def _module_level(tree: ast.Module, name: str, is_package: bool) -> Module:
    constants: dict[str, ast.expr] = {}
    imports: dict[str, tuple[str, str]] = {}
    package = name if is_package else name.rpartition(".")[0]
    for node in tree.body:
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            constants[node.target.id] = node.value
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                imports[alias.asname or alias.name] = (source, alias.name)
    return Module(name, tree, constants, imports)


def _bind_target(
    bindings: dict[str, list[tuple[str, ast.expr | None]]],
    target: ast.expr,
    kind: str,
    value: ast.expr | None,
) -> None:
    if isinstance(target, ast.Name):
        bindings.setdefault(target.id, []).append((kind, value))
    elif isinstance(target, ast.Tuple | ast.List):
        if (
            kind == "value"
            and isinstance(value, ast.Tuple | ast.List)
            and len(value.elts) == len(target.elts)
        ):
            for part, part_value in zip(target.elts, value.elts, strict=True):
                _bind_target(bindings, part, "value", part_value)
        else:
            for part in target.elts:
                _bind_target(bindings, part, "element" if kind == "value" else kind, value)
    elif isinstance(target, ast.Starred):
        _bind_target(bindings, target.value, kind, value)


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's own scope: not those of nested functions or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        yield child
        yield from _own_nodes(child)


def _collect_bindings(function: Function) -> None:
    bindings = function.bindings
    for name in function.params:
        bindings.setdefault(name, []).append(("param", None))
    args = function.node.args
    for special in (args.vararg, args.kwarg):
        if special is not None:
            bindings.setdefault(special.arg, []).append(("opaque", None))
    for node in _own_nodes(function.node):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _bind_target(bindings, target, "value", node.value)
        elif isinstance(node, ast.AugAssign | ast.NamedExpr) or (
            isinstance(node, ast.AnnAssign) and node.value is not None
        ):
            assert node.value is not None
            _bind_target(bindings, node.target, "value", node.value)
        elif isinstance(node, ast.For | ast.AsyncFor):
            _bind_target(bindings, node.target, "element", node.iter)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            _bind_target(bindings, node.optional_vars, "opaque", None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bindings.setdefault(node.name, []).append(("opaque", None))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bindings.setdefault(alias.asname or alias.name, []).append(("opaque", None))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.attr in {"append", "extend", "insert", "add", "update"}
        ):
            # A list or set of SQL fragments grows: what goes in must be safe too.
            for arg in node.args[-1:]:
                bindings.setdefault(node.func.value.id, []).append(("value", arg))
    for child in _own_nodes(function.node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            bindings.setdefault(child.name, []).append(("opaque", None))


class SqlSources:
    """Finds every SQL string cqrs_cli hands to SQLite and proves it is built from
    literals and module constants, following parameters back through their callers."""

    def __init__(self, sources: dict[str, tuple[str, bool]]) -> None:
        self.modules: dict[str, Module] = {}
        self.functions: list[Function] = []
        self.call_sites: list[tuple[ast.Call, Function | None, Module]] = []
        for name, (source, is_package) in sources.items():
            tree = ast.parse(source)
            module = _module_level(tree, name, is_package)
            self.modules[name] = module
            self._walk(tree, module, None, frozenset(), False)
        self.findings: list[str] = []
        self.forwarded: dict[str, set[str]] = {}  # function name -> its params reaching SQL
        self._checked: set[tuple[str, str]] = set()
        self._active: set[tuple[int, str]] = set()

    def _walk(
        self,
        node: ast.AST,
        module: Module,
        function: Function | None,
        class_methods: frozenset[str],
        in_class: bool,
    ) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                methods = frozenset(
                    item.name
                    for item in child.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                )
                self._walk(child, module, function, methods, True)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                is_method = in_class and not any(
                    isinstance(d, ast.Name) and d.id == "staticmethod" for d in child.decorator_list
                )
                inner = Function(child, module.name, function, class_methods, is_method)
                _collect_bindings(inner)
                self.functions.append(inner)
                self._walk(child, module, inner, frozenset(), False)
            else:
                if isinstance(child, ast.Call):
                    self.call_sites.append((child, function, module))
                self._walk(child, module, function, class_methods, in_class)

    # The check

    def check(self) -> list[str]:
        for call, function, module in self.call_sites:
            sql = self._sql_argument(call, function)
            if sql is not None:
                self._require_safe(sql, function, module, call, "SQL")
        pending = True
        while pending:
            pending = False
            for name, params in list(self.forwarded.items()):
                for param in list(params):
                    if (name, param) not in self._checked:
                        self._checked.add((name, param))
                        self._check_callers(name, param)
                        pending = True
        return self.findings

    def _sql_argument(self, call: ast.Call, function: Function | None) -> ast.expr | None:
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr not in SQL_METHODS:
            return None
        receiver = func.value
        if isinstance(receiver, ast.Name):
            # Not SQL: CommandService.execute(command), called as self.execute inside
            # the class, and as service.execute by the command-line layer.
            if receiver.id == "self" and function and func.attr in function.class_methods:
                return None
            if receiver.id == "service":
                return None
        if call.args:
            return call.args[0]
        for keyword in call.keywords:
            if keyword.arg in ("sql", "__sql"):
                return keyword.value
        return None

    def _require_safe(
        self, expr: ast.expr, function: Function | None, module: Module, call: ast.Call, what: str
    ) -> None:
        if not self._safe(expr, function, module, {}):
            shown = ast.unparse(expr)
            self.findings.append(
                f"{module.name}:{call.lineno}: {what} built from something that is not a "
                f"constant: {shown[:200]}"
            )

    def _check_callers(self, name: str, param: str) -> None:
        definitions = [f for f in self.functions if f.node.name == name]
        calls = [
            (call, function, module)
            for call, function, module in self.call_sites
            if (isinstance(call.func, ast.Attribute) and call.func.attr == name)
            or (isinstance(call.func, ast.Name) and call.func.id == name)
        ]
        if not calls:
            where = ", ".join(f"{f.module}:{f.node.lineno}" for f in definitions)
            self.findings.append(
                f"{where}: parameter {param!r} of {name}() reaches SQL, and {name}() is "
                "called from outside cqrs_cli (no caller here to check)"
            )
            return
        for call, function, module in calls:
            arguments = self._argument_for(call, name, param, definitions)
            if arguments is None:
                self.findings.append(
                    f"{module.name}:{call.lineno}: cannot tell what {name}() gets as "
                    f"{param!r}, which reaches SQL: {ast.unparse(call)[:200]}"
                )
                continue
            for argument in arguments:
                self._require_safe(argument, function, module, call, f"{name}({param}=...)")

    def _argument_for(
        self, call: ast.Call, name: str, param: str, definitions: list[Function]
    ) -> list[ast.expr] | None:
        """What `call` passes as `param` (one expression per matching definition; a
        default value counts); None if it cannot be told (*args, **kwargs)."""
        found: list[ast.expr] = []
        for definition in definitions:
            params = definition.params
            if param not in params:
                continue
            # Called as obj.method(...) or as a plain function.
            offset = 0
            if definition.is_method and isinstance(call.func, ast.Name):
                offset = 1  # an unbound call passes self first
            index = params.index(param) + offset
            keyword = next((k for k in call.keywords if k.arg == param), None)
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                return None
            if keyword is not None:
                found.append(keyword.value)
            elif index < len(call.args):
                found.append(call.args[index])
            else:
                defaults = definition.node.args.defaults
                positional = [*definition.node.args.posonlyargs, *definition.node.args.args]
                shift = len(positional) - len(defaults) - (1 if definition.is_method else 0)
                position = params.index(param) - shift
                if 0 <= position < len(defaults):
                    found.append(defaults[position])
                else:
                    kw = definition.node.args
                    names = [a.arg for a in kw.kwonlyargs]
                    if param in names and kw.kw_defaults[names.index(param)] is not None:
                        default = kw.kw_defaults[names.index(param)]
                        assert default is not None
                        found.append(default)
        return found

    # Safety of one expression

    def _safe(
        self,
        expr: ast.expr,
        function: Function | None,
        module: Module,
        local: dict[str, ast.expr],
    ) -> bool:
        def safe(node: ast.expr) -> bool:
            return self._safe(node, function, module, local)

        if isinstance(expr, ast.Constant):
            return isinstance(expr.value, str | int | float | bool | bytes) or expr.value is None
        if isinstance(expr, ast.JoinedStr):
            return all(safe(v) for v in expr.values)
        if isinstance(expr, ast.FormattedValue):
            return safe(expr.value)
        if isinstance(expr, ast.BinOp):
            return safe(expr.left) and safe(expr.right)
        if isinstance(expr, ast.BoolOp):
            return all(safe(v) for v in expr.values)
        if isinstance(expr, ast.Compare):
            return True  # a bool
        if isinstance(expr, ast.IfExp):
            return safe(expr.body) and safe(expr.orelse)
        if isinstance(expr, ast.Tuple | ast.List | ast.Set):
            return all(safe(e) for e in expr.elts)
        if isinstance(expr, ast.Dict):
            return all(safe(k) for k in expr.keys if k is not None) and all(
                safe(v) for v in expr.values
            )
        if isinstance(expr, ast.Subscript):
            return safe(expr.value)
        if isinstance(expr, ast.Starred):
            return safe(expr.value)
        if isinstance(expr, ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp):
            inner = dict(local)
            for generator in expr.generators:
                if not self._safe(generator.iter, function, module, inner):
                    return False
                for name in ast.walk(generator.target):
                    if isinstance(name, ast.Name):
                        inner[name.id] = generator.iter
            if isinstance(expr, ast.DictComp):
                return self._safe(expr.key, function, module, inner) and self._safe(
                    expr.value, function, module, inner
                )
            return self._safe(expr.elt, function, module, inner)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name):
                return (expr.value.id, expr.attr) in CONSTANT_ATTRIBUTES
            return False
        if isinstance(expr, ast.Call):
            func = expr.func
            arguments = [*expr.args, *(k.value for k in expr.keywords)]
            if isinstance(func, ast.Name):
                if func.id in NUMERIC_CALLS:
                    return True
                if func.id in PASS_THROUGH:
                    return all(safe(a) for a in arguments)
                return False
            if isinstance(func, ast.Attribute) and func.attr in TEXT_TRANSFORMS:
                return safe(func.value) and all(safe(a) for a in arguments)
            return False
        if isinstance(expr, ast.Name):
            if expr.id in local:
                return self._safe(local[expr.id], function, module, local)
            return self._safe_name(expr.id, function, module)
        return False

    def _safe_name(self, name: str, function: Function | None, module: Module) -> bool:
        scope = function
        while scope is not None:
            if name in scope.bindings:
                key = (id(scope), name)
                if key in self._active:
                    return True  # a cycle (sql += ...): the other bindings decide
                self._active.add(key)
                try:
                    return all(
                        self._safe_binding(kind, value, name, scope, module)
                        for kind, value in scope.bindings[name]
                    )
                finally:
                    self._active.discard(key)
            scope = scope.parent
        return self._safe_global(name, module, set())

    def _safe_binding(
        self, kind: str, value: ast.expr | None, name: str, scope: Function, module: Module
    ) -> bool:
        if kind == "param":
            # Safe if every caller passes something safe: checked in check().
            self.forwarded.setdefault(scope.node.name, set()).add(name)
            return True
        if kind in ("value", "element"):
            assert value is not None
            return self._safe(value, scope, module, {})
        return False

    def _safe_global(self, name: str, module: Module, seen: set[tuple[str, str]]) -> bool:
        if (module.name, name) in seen:
            return False
        seen.add((module.name, name))
        if name in module.constants:
            return self._safe(module.constants[name], None, module, {})
        if name in module.imports:
            source, original = module.imports[name]
            if source in self.modules:
                return self._safe_global(original, self.modules[source], seen)
        return False


def package_sources(root: Path = Path(cqrs_cli.__file__).parent) -> dict[str, tuple[str, bool]]:
    sources = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        sources[".".join(parts)] = (path.read_text(), is_package)
    return sources


def sql_findings(sources: dict[str, tuple[str, bool]]) -> list[str]:
    return SqlSources(sources).check()


def test_sql_is_built_from_constants_only() -> None:
    findings = sql_findings(package_sources())
    assert findings == [], "SQL built from data:\n" + "\n".join(findings[:30])


def test_the_check_sees_every_sql_call_of_the_package() -> None:
    """Guard against a check that passes because it looks at nothing."""
    analysis = SqlSources(package_sources())
    assert analysis.check() == []
    sinks = [
        (module.name, call.lineno)
        for call, function, module in analysis.call_sites
        if analysis._sql_argument(call, function) is not None
    ]
    assert len(sinks) >= 40, sinks
    # The helpers that pass SQL on were found, so their callers were checked too.
    assert {"_query", "_select", "query", "_list"} <= set(analysis.forwarded), analysis.forwarded


def test_file_specs_are_module_constants() -> None:
    """CONSTANT_ATTRIBUTES trusts FileSpec fields: every FileSpec is a module constant
    built from integer constants."""
    for name, (source, _) in package_sources().items():
        tree = ast.parse(source)
        top_level = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "FileSpec"
            ):
                assert id(node) in top_level, f"{name}:{node.lineno}: FileSpec not a constant"
                assert all(isinstance(a, ast.Constant | ast.Name) for a in node.args)


# Each snippet puts user data into SQL in one way; the check must catch every one.
INJECTIONS = {
    "f-string": """
        def get(conn, item_id):
            return conn.execute(f"SELECT * FROM items WHERE item_id = '{item_id}'")
    """,
    "percent": """
        def get(conn, item_id):
            return conn.execute("SELECT * FROM items WHERE item_id = '%s'" % item_id)
    """,
    "format": """
        def get(conn, item_id):
            return conn.execute("SELECT * FROM items WHERE item_id = '{}'".format(item_id))
    """,
    "concatenated-local": """
        def get(conn, item_id):
            sql = "SELECT * FROM items"
            sql += " WHERE item_id = '" + item_id + "'"
            return conn.execute(sql)
    """,
    "appended-fragment": """
        def get(conn, prefix):
            where = ["deleted = 0"]
            where.append(f"item_id LIKE '{prefix}%'")
            return conn.execute(f"SELECT * FROM items WHERE {' AND '.join(where)}")
    """,
    "through-a-helper": """
        class Store:
            def _query(self, sql):
                return self.conn.execute(sql)

            def get(self, item_id):
                return self._query(f"SELECT * FROM items WHERE item_id = '{item_id}'")
    """,
    "helper-called-with-data": """
        def _select(conn, columns):
            return conn.execute(f"SELECT {columns} FROM items")

        def run(conn, text):
            return _select(conn, text)
    """,
    "helper-called-with-kwargs": """
        def _select(conn, columns):
            return conn.execute(f"SELECT {columns} FROM items")

        def run(conn, **options):
            return _select(conn, **options)
    """,
    "non-constant-global": """
        import os
        TABLE = os.environ["TABLE"]

        def count(conn):
            return conn.execute(f"SELECT COUNT(*) FROM {TABLE}")
    """,
    "loop-variable": """
        def drop(conn, names):
            for name in names:
                conn.execute(f"DROP TABLE {name}")
    """,
    "executemany-script": """
        def load(conn, script):
            conn.executescript(script)
    """,
    "attribute": """
        def get(conn, command):
            return conn.execute(f"SELECT * FROM items WHERE item_id = '{command.item_id}'")
    """,
}

SAFE = """
    COLUMNS = ("a", "b")
    _SELECT = f"SELECT {', '.join(COLUMNS)} FROM t"
    VERSIONS = {"x": 1}
    _WHERE = " OR ".join(f"(k = '{k}' AND v = {v})" for k, v in VERSIONS.items())

    def _query(conn, sql, params=()):
        return conn.execute(sql, params)

    def read(conn, ids, limit):
        marks = ",".join("?" * len(ids))
        where = ["deleted = 0"]
        if limit:
            where.append("n < ?")
        sql = f"{_SELECT} WHERE id IN ({marks}) AND {' AND '.join(where)} AND ({_WHERE})"
        conn.execute(f"PRAGMA busy_timeout = {int(limit * 1000)}")
        return _query(conn, sql, (*ids, limit))
"""


@pytest.mark.parametrize("snippet", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_the_check_catches_user_data_in_sql(snippet: str) -> None:
    findings = sql_findings({"example": (textwrap.dedent(snippet), False)})
    assert findings, "the check missed an injection"


def test_the_check_accepts_sql_built_from_constants_and_placeholders() -> None:
    assert sql_findings({"example": (textwrap.dedent(SAFE), False)}) == []


def test_the_check_catches_user_data_put_into_the_real_query_service() -> None:
    """Mutate the real QueryService.get_item to interpolate its item_id: the check, run
    over the whole package, must point at it."""
    sources = package_sources()
    name = "cqrs_cli.read.query_service"
    source, is_package = sources[name]
    tree = ast.parse(source)
    service = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "QueryService")
    get_item = next(
        n for n in service.body if isinstance(n, ast.FunctionDef) and n.name == "get_item"
    )
    injected = ast.parse(
        "self._query(f\"SELECT 1 FROM items WHERE item_id = '{item_id}'\", ())"
    ).body[0]
    get_item.body.insert(0, injected)
    sources[name] = (ast.unparse(ast.fix_missing_locations(tree)), is_package)
    findings = sql_findings(sources)
    assert findings, "user data interpolated into SQL went unnoticed"
    assert any("item_id" in finding or "get_item" in finding for finding in findings), findings
