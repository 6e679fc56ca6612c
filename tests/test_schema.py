"""The schema is a product: the committed SDL matches the code, every root field checks a
permission, and every client operation in the repo validates against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphql import parse, validate
from strawberry.permission import PermissionExtension

from app.config import Settings
from app.gql.schema import build_schema
from tests.client import operations

ROOT = Path(__file__).resolve().parents[1]


def test_sdl_matches_the_committed_file() -> None:
    sdl = build_schema(Settings(introspection=True)).as_str() + "\n"
    committed = (ROOT / "graphql" / "schema.graphql").read_text()
    assert sdl == committed, "schema drifted: run `opsgraph schema > graphql/schema.graphql`"


def test_every_root_field_has_a_permission() -> None:
    schema = build_schema(Settings(introspection=True))
    for root in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(root)
        assert definition is not None
        for field in definition.fields:  # type: ignore[union-attr]
            perms = [e for e in field.extensions if isinstance(e, PermissionExtension)]
            assert perms and perms[0].permissions, f"{root}.{field.name} checks no permission"


def test_operations_validate() -> None:
    schema = build_schema(Settings(introspection=True))._schema
    ops = operations()
    assert {"SubmitTask", "TaskUpdated", "Tasks", "QueueStats"} <= set(ops)
    for name, document in ops.items():
        errors = validate(schema, parse(document))
        assert not errors, (name, errors)


def test_no_python_inside_graphql_folder() -> None:
    assert not list((ROOT / "graphql").rglob("*.py"))


async def test_queries_over_get(admin: Any) -> None:
    response = await admin.http.get("/graphql", params={"query": "{ queueStats { totalActive } }"})
    assert response.status_code == 200 and response.json()["data"]["queueStats"]
    # mutations are refused over GET
    response = await admin.http.get(
        "/graphql",
        params={
            "query": 'mutation { cancelTask(input: {id: "11111111-1111-1111-1111-111111111111"}) '
            "{ errors { code } } }"
        },
    )
    assert response.status_code in (400, 405)


def test_models_match_the_migrations(stores: Any) -> None:
    from alembic import command

    from app.cli.migrate import alembic_config

    # raises when the ORM models and the migrated database differ
    command.check(alembic_config(stores.database_url))


def test_readme_examples_validate() -> None:
    """Every `graphql` example of README and of the documentation site (docs/)."""
    import re

    schema = build_schema(Settings(introspection=True))._schema
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = [
        (page.relative_to(ROOT), block)
        for page in pages
        for block in re.findall(r"```graphql\n(.*?)```", page.read_text(), re.S)
    ]
    assert len(blocks) >= 8
    for page, block in blocks:
        assert not validate(schema, parse(block)), f"{page}:\n{block}"


async def test_introspection_follows_the_setting() -> None:
    query = "{ __schema { queryType { name } } }"
    off = await build_schema(Settings(dev=False)).execute(query)
    assert off.errors and "introspection" in off.errors[0].message.lower()
    on = await build_schema(Settings(dev=True)).execute(query)
    assert on.errors is None and on.data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_graphiql_page_in_dev(server: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=server) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
