"""Each app owns its tables: no SQL written outside an app names that app's tables.

Another app reads them through the owner's selectors (functions, or SQL fragments the
owner defines and the reader composes into its own statement) and writes them through
the owner's services. This scans the string literals of the project's Python source
(migrations, which build each app's own schema, aside) for the table names of the local
apps' models, as Django knows them, and lists every literal naming a table its module's
app does not own.
"""

import ast
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR).resolve()

# (file, table) -> why the file may still name the table. Each entry must still be
# needed: a stale one fails the test, so the list only shrinks.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # products/nearby's and search's hot statements join the products' stock. The nearby
    # walk of merchants comes from merchants.selectors; the stock join cannot come from
    # inventory.selectors while catalog sits below inventory in the import layers
    # (pyproject.toml), and each must stay one statement for its LIMIT to stop the scan.
    ("catalog/selectors.py", "inventory_inventory"): "catalog is below inventory",
}


def _local_apps() -> list:
    """The installed apps whose code is this project's (not an installed package's),
    innermost first, so a file is owned by the most specific app around it
    (geomarket.accounts, not geomarket)."""
    local = [
        config
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT)
        and "site-packages" not in Path(config.path).relative_to(ROOT).parts
    ]
    return sorted(local, key=lambda config: len(Path(config.path).parts), reverse=True)


def _tables_by_app() -> dict[str, set[str]]:
    """App label -> the tables of its models, many-to-many link tables included."""
    return {
        config.label: {
            model._meta.db_table for model in config.get_models(include_auto_created=True)
        }
        for config in _local_apps()
    }


def _source_files() -> list[Path]:
    """Every module of the top-level packages holding a local app, migrations aside."""
    packages = {ROOT / Path(config.path).relative_to(ROOT).parts[0] for config in _local_apps()}
    return sorted(
        path
        for package in packages
        for path in package.rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def _owner(path: Path) -> str | None:
    for config in _local_apps():
        if path.is_relative_to(config.path):
            return config.label
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes: prose about tables, not SQL."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _literals(source: str) -> list[tuple[int, str]]:
    """`(line, text)` of each string literal of the module, f-strings' fixed parts too."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _table_pattern(tables: set[str]) -> re.Pattern:
    # Whole identifiers only: `merchants_merchant` is not found in
    # `merchants_merchant_categories`.
    names = "|".join(re.escape(table) for table in sorted(tables, key=len, reverse=True))
    return re.compile(rf"(?<!\w)({names})(?!\w)")


def _offences(
    modules: list[tuple[str, str | None, str]], tables_by_app: dict[str, set[str]]
) -> set[tuple[str, int, str]]:
    """`(name, line, table)` for each literal naming a table its module's app does not
    own, of `modules` given as `(name, owning app label or None, source)`."""
    owner_of = {table: label for label, tables in tables_by_app.items() for table in tables}
    pattern = _table_pattern(set(owner_of))
    found = set()
    for name, owner, source in modules:
        for line, text in _literals(source):
            for match in pattern.finditer(text):
                table = match.group(1)
                if owner_of[table] != owner:
                    found.add((name, line, table))
    return found


def _project_modules() -> list[tuple[str, str | None, str]]:
    return [
        (str(path.relative_to(ROOT)), _owner(path), path.read_text()) for path in _source_files()
    ]


def test_the_scan_sees_every_local_app():
    tables = _tables_by_app()
    for label in ("merchants", "catalog", "inventory", "orders", "delivery"):
        assert tables[label], f"no tables found for {label}"
    assert "merchants_merchant_categories" in tables["merchants"]
    files = {str(path.relative_to(ROOT)) for path in _source_files()}
    assert {"orders/services/placement.py", "delivery/services.py", "demo/apps.py"} <= files
    assert not any("/migrations/" in name for name in files)


def test_the_scan_finds_a_table_named_outside_its_app():
    # A module of orders naming merchants' tables and its own, in plain and f-strings.
    source = (
        '"""Docstrings may speak of merchants_merchant."""\n'
        'A = "SELECT 1 FROM merchants_address a JOIN orders_order o ON true"\n'
        'B = f"UPDATE {A} merchants_merchant_categories"\n'
        'C = "merchants_merchantx orders_order"\n'
    )
    found = _offences([("probe.py", "orders", source)], _tables_by_app())
    assert found == {
        ("probe.py", 2, "merchants_address"),
        ("probe.py", 3, "merchants_merchant_categories"),
    }
    # The same text in a module no app owns (geomarket's generic code) names no table of
    # its own.
    unowned = _offences([("probe.py", None, source)], _tables_by_app())
    assert ("probe.py", 2, "orders_order") in unowned


def test_no_app_names_another_apps_tables():
    found = _offences(_project_modules(), _tables_by_app())
    offences = sorted(entry for entry in found if (entry[0], entry[2]) not in EXCEPTIONS)
    assert not offences, (
        "SQL naming another app's table, outside that app: read it through the owner's "
        "selectors and write it through its services instead:\n"
        + "\n".join(f"  {path}:{line}: {table}" for path, line, table in offences)
    )
    stale = sorted(set(EXCEPTIONS) - {(path, table) for path, _, table in found})
    assert not stale, f"Exceptions no longer needed, remove them: {stale}"
