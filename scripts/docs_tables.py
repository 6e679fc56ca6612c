"""The documentation's generated tables, made from the code at build time (an MkDocs hook).

mkdocs.yml names this file under `hooks:`; every page is passed through `on_page_markdown`,
which replaces each marker line `<!-- generated: NAME -->` with the table NAME below:

- `configuration`: every field of `app.config.Settings` (its `OPSGRAPH_<NAME>` variable,
  default and description), grouped by the section comments of the class;
- `mutations`: the mutation catalog, `tests/mutations/catalog.py` (name, file, fast subset);
- `roles`: each role's permissions without and with a tenant, from `app.auth`'s
  `ROLE_PERMISSIONS` and `TENANT_PERMISSIONS`;
- `installation-routes`: the REST operations whose OpenAPI `x-opsgraph-access` declares the
  installation scope (the REST app is built, not served).

An unknown marker fails the build, so a typo cannot leave a hole in a page.
`python scripts/docs_tables.py NAME` prints one table.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
SECTION = re.compile(r"^    # (.+)$")
FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*)\s*:")


def _cell(text: str) -> str:
    """Table-safe text: one line; pipes, angle brackets and asterisks taken literally (outside
    code spans, `<root>` would be read as HTML and `x * y` as emphasis)."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def _value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, separators=(',', ':'))}`"
    return f"`{value}`"


def configuration() -> str:
    """Every setting of app/config.py, in the order and sections of its class."""
    from pydantic_core import PydanticUndefined

    from app.config import Settings

    sections: dict[str, str] = {}
    current = ""
    for line in inspect.getsource(Settings).splitlines():
        if match := SECTION.match(line):
            current = match.group(1)
        elif (match := FIELD.match(line)) and match.group(1) in Settings.model_fields:
            sections[match.group(1)] = current
    out: list[str] = []
    heading = None
    for name, field in Settings.model_fields.items():
        section = sections.get(name, "")
        if section != heading or not out:
            heading = section
            if out:
                out.append("")
            if section:
                out += [f"### {section}", ""]
            out += ["| variable | default | meaning |", "|---|---|---|"]
        if field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        elif field.default is PydanticUndefined:
            default = None
        else:
            default = field.default
        out.append(
            f"| `OPSGRAPH_{name.upper()}` | {_cell(_value(default))} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(out)


def _catalog() -> Any:
    """tests/mutations/catalog.py, loaded by path (the tests are not an installed package)."""
    path = ROOT / "tests" / "mutations" / "catalog.py"
    spec = importlib.util.spec_from_file_location("opsgraph_docs_mutation_catalog", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while being built
    spec.loader.exec_module(module)
    return module


def mutations() -> str:
    """The mutation catalog: each named bug, the file it breaks, whether --fast runs it."""
    catalog = _catalog().MUTATIONS
    fast = sum(1 for m in catalog if m.fast)
    out = [
        f"{len(catalog)} mutations, {fast} of them in the `--fast` subset.",
        "",
        "| mutation | file | `--fast` |",
        "|---|---|---|",
    ]
    for m in catalog:
        out.append(f"| {_cell(m.name)} | `{m.file}` | {'yes' if m.fast else 'no'} |")
    return "\n".join(out)


def roles() -> str:
    """Each role's permissions, unscoped and naming a tenant (app/auth/principals.py decides
    both)."""
    from app.auth.principals import (
        ROLE_PERMISSIONS,
        TENANT_PERMISSIONS,
        Permission,
        check_credential,
    )

    def names(held: frozenset[Permission]) -> str:
        return ", ".join(p.value for p in Permission if p in held) or "—"

    out = ["| role | unscoped | naming a tenant |", "|---|---|---|"]
    for role, held in sorted(ROLE_PERMISSIONS.items(), key=lambda r: (-len(r[1]), r[0])):
        try:
            check_credential(role, None)
            unscoped = names(held)
        except ValueError as refused:  # e.g. a tenant_admin must name its tenant
            unscoped = f"refused: {_cell(str(refused))}"
        out.append(f"| `{role}` | {unscoped} | {names(held & TENANT_PERMISSIONS)} |")
    return "\n".join(out)


def installation_routes() -> str:
    """REST operations declared installation-wide, read from the app's own OpenAPI document."""
    from app.config import Settings
    from app.main import create_rest_app

    document = create_rest_app(Settings()).openapi()
    out = ["| method | path | permission |", "|---|---|---|"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            access = operation.get("x-opsgraph-access") if isinstance(operation, dict) else None
            if access and access.get("scope") == "installation":
                out.append(f"| `{method.upper()}` | `{path}` | {access['permission']} |")
    return "\n".join(out)


TABLES: dict[str, Callable[[], str]] = {
    "configuration": configuration,
    "mutations": mutations,
    "roles": roles,
    "installation-routes": installation_routes,
}
_made: dict[str, str] = {}


def table(name: str) -> str:
    if name not in TABLES:
        raise KeyError(f"unknown generated table {name!r}; known: {', '.join(TABLES)}")
    if name not in _made:
        _made[name] = TABLES[name]()
    return _made[name]


def render(markdown: str) -> str:
    """The page with every marker replaced by its table."""
    return MARKER.sub(lambda m: table(m.group(1)), markdown)


def on_pre_build(config: Any) -> None:
    """MkDocs hook: tables are made afresh for each build (`mkdocs serve` rebuilds)."""
    _made.clear()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: each page's markers become tables."""
    return render(markdown)


if __name__ == "__main__":
    on_pre_build(None)
    for arg in sys.argv[1:] or list(TABLES):
        print(table(arg), end="\n\n")
