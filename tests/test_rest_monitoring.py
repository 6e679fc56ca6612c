"""Seed 001's task endpoints: every parameter, valid and invalid, against data written directly
through the service layer (no worker involved)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_sessionmaker
from app.db.models import Task
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions

BASE = "/api/v1/monitoring"


async def seed(engine: AsyncEngine) -> list[Task]:
    """Six tasks with distinct statuses, types, providers, origins and creation times."""
    rows = []
    specs = [
        ("QUEUED", "echo", None, "cam-1", "eu", "t1"),
        ("RUNNING", "llm", "simulated", "cam-1", "eu", "t1"),
        ("COMPLETED", "llm", "openai", "cam-2", "us", "t2"),
        ("FAILED", "echo", "simulated", "cam-2", "us", None),
        ("CANCELLED", "echo", None, "cam-3", None, None),
        ("COMPLETED", "llm", "simulated", "cam-3", "eu", "t1"),
    ]
    now = datetime.now(UTC)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        for i, (status, ttype, provider, inst, zone, tenant) in enumerate(specs):
            task = await task_submissions.submit_task(
                session=session,
                spec=task_specs.TaskSpec(
                    task_type=ttype,
                    queue="parked",  # no worker consumes it: the rows stay as written
                    priority=10 * i,
                    input={"prompt": "x"} if ttype == "llm" else {},
                    origin_instance=inst,
                    origin_zone=zone,
                    origin_tenant_id=tenant,
                ),
            )
            rows.append(task)
            created = now - timedelta(hours=6 - i)
            values: dict[str, Any] = {"status": status, "provider": provider, "created_at": created}
            if status in ("RUNNING", "COMPLETED", "FAILED"):
                values["started_at"] = created + timedelta(seconds=1)
            if status in ("COMPLETED", "FAILED", "CANCELLED"):
                values["completed_at"] = created + timedelta(seconds=1 + i)
            if status == "FAILED":
                values["errors"] = ["boom"]
            await session.execute(update(Task).where(Task.id == task.id).values(**values))
    return rows


@pytest.fixture
async def rows(engine: AsyncEngine) -> list[Task]:
    return await seed(engine)


async def ids(http: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await http.get(f"{BASE}/tasks", params=params)
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


def idx(rows: list[Task], *which: int) -> list[str]:
    return [str(rows[i].id) for i in which]


async def test_defaults_sort_newest_first(http: httpx.AsyncClient, rows: list[Task]) -> None:
    body = (await http.get(f"{BASE}/tasks")).json()
    assert body["total"] == 6 and body["page"] == 1 and body["page_size"] == 50
    assert body["pages"] == 1
    assert [i["id"] for i in body["items"]] == idx(rows, 5, 4, 3, 2, 1, 0)


async def test_each_filter(http: httpx.AsyncClient, rows: list[Task]) -> None:
    assert await ids(http, status="PENDING") == idx(rows, 0)
    assert await ids(http, status="EXECUTING") == idx(rows, 1)
    assert await ids(http, status="COMPLETED") == idx(rows, 5, 2)
    assert await ids(http, task_type="LLM") == idx(rows, 5, 2, 1)
    assert await ids(http, task_type="echo") == idx(rows, 4, 3, 0)
    assert await ids(http, provider_type="OPENAI") == idx(rows, 2)
    assert await ids(http, origin_instance="cam-2") == idx(rows, 3, 2)
    assert await ids(http, origin_zone="eu") == idx(rows, 5, 1, 0)
    assert await ids(http, origin_tenant_id="t1") == idx(rows, 5, 1, 0)
    body = (await http.get(f"{BASE}/tasks", params={"sort_order": "asc"})).json()
    created = [i["created_at"] for i in body["items"]]
    assert await ids(http, created_after=created[2]) == idx(rows, 5, 4, 3)
    assert await ids(http, created_before=created[2]) == idx(rows, 1, 0)
    assert await ids(http, created_after=created[1], created_before=created[4]) == idx(rows, 3, 2)
    prefix = str(rows[3].id)[:8]
    assert str(rows[3].id) in await ids(http, search=prefix)
    assert await ids(http, search=str(rows[3].id).upper()) == idx(rows, 3)
    assert await ids(http, status="FAILED", origin_instance="cam-2", task_type="ECHO") == idx(
        rows, 3
    )


async def test_item_shape_and_computed_fields(http: httpx.AsyncClient, rows: list[Task]) -> None:
    items = {i["id"]: i for i in (await http.get(f"{BASE}/tasks")).json()["items"]}
    failed = items[str(rows[3].id)]
    assert failed["has_error"] is True and failed["status"] == "FAILED"
    assert failed["duration_ms"] == 3000.0
    assert failed["provider_type"] == "SIMULATED" and failed["task_type"] == "ECHO"
    queued = items[str(rows[0].id)]
    assert queued["duration_ms"] is None and queued["started_at"] is None
    assert queued["provider_type"] is None and queued["has_error"] is False


async def test_pagination(http: httpx.AsyncClient, rows: list[Task]) -> None:
    page1 = (await http.get(f"{BASE}/tasks", params={"page_size": 4})).json()
    page2 = (await http.get(f"{BASE}/tasks", params={"page_size": 4, "page": 2})).json()
    page9 = (await http.get(f"{BASE}/tasks", params={"page_size": 4, "page": 9})).json()
    assert page1["pages"] == 2 and page1["total"] == 6 and page1["page_size"] == 4
    assert [i["id"] for i in page1["items"] + page2["items"]] == idx(rows, 5, 4, 3, 2, 1, 0)
    assert page2["page"] == 2 and len(page2["items"]) == 2
    assert page9["items"] == [] and page9["total"] == 6
    full = (await http.get(f"{BASE}/tasks", params={"page_size": 100})).json()
    assert len(full["items"]) == 6


async def test_sorting(http: httpx.AsyncClient, rows: list[Task]) -> None:
    assert await ids(http, sort_order="asc") == idx(rows, 0, 1, 2, 3, 4, 5)
    assert await ids(http, sort_by="priority", sort_order="desc") == idx(rows, 5, 4, 3, 2, 1, 0)
    by_duration = await ids(http, sort_by="duration_ms", sort_order="desc")
    assert by_duration[:2] == idx(rows, 5, 3)  # 6 s, then 4 s... nulls last
    assert by_duration[-1] in idx(rows, 0, 1, 4)
    statuses = [
        i["status"]
        for i in (
            await http.get(f"{BASE}/tasks", params={"sort_by": "status", "sort_order": "asc"})
        ).json()["items"]
    ]
    assert statuses == sorted(
        statuses, key=lambda s: {"PENDING": "QUEUED", "EXECUTING": "RUNNING"}.get(s, s)
    )
    for field in (
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "task_type",
        "provider_type",
        "progress",
    ):
        for order in ("asc", "desc"):
            params = {"sort_by": field, "sort_order": order}
            items = (await http.get(f"{BASE}/tasks", params=params)).json()["items"]
            assert len(items) == 6
            if field not in items[0]:  # sortable but not shown (updated_at)
                continue
            values = [i[field] for i in items]
            present = [v for v in values if v is not None]
            assert values[: len(present)] == present, (field, order, values)  # nulls last
            assert present == sorted(present, reverse=order == "desc"), (field, order, values)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page": 0}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 10_000}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"sort_by": "password"}, "sort_by"),
        ({"sort_order": "sideways"}, "sort_order"),
        ({"status": "DONE"}, "status"),
        ({"status": "queued"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2024-13-45T00:00:00"}, "created_before"),
        ({"search": "not-hex!"}, "search"),
        ({"search": "a" * 40}, "search"),
    ],
)
async def test_bad_parameters_get_422_detail(
    http: httpx.AsyncClient, params: dict[str, Any], loc: str
) -> None:
    response = await http.get(f"{BASE}/tasks", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    assert detail[0]["loc"] == ["query", loc]
    assert detail[0]["msg"] and detail[0]["type"]


async def test_detail_media_and_errors(http: httpx.AsyncClient, rows: list[Task]) -> None:
    failed = (await http.get(f"{BASE}/tasks/{rows[3].id}")).json()
    expected = {
        "id",
        "task_type",
        "provider_type",
        "status",
        "progress",
        "origin_instance",
        "origin_zone",
        "origin_tenant_id",
        "origin_reference",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "duration_ms",
        "queue_name",
        "priority",
        "celery_task_id",
        "service_task_id",
        "executor_type",
        "executor_instance",
        "config",
        "webhook_url",
        "errors",
        "retry_count",
        "is_resumed",
        "resume_attempt_count",
        "last_resume_attempt",
        "service_requests",
        "task_data",
    }
    assert set(failed) == expected
    assert failed["errors"] == ["boom"] and failed["priority"] == 30
    assert failed["celery_task_id"] == str(rows[3].id)

    missing = uuid.uuid4()
    for path in (f"/tasks/{missing}", f"/tasks/{missing}/media"):
        response = await http.get(BASE + path)
        assert response.status_code == 404 and response.json() == {"detail": "Task not found"}
    for path in ("/tasks/not-a-uuid", "/tasks/not-a-uuid/media"):
        response = await http.get(BASE + path)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "task_id"]


async def test_media_lists_inputs_and_outputs(http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(engine)
    item = {
        "name": "base_image",
        "path": "in/a.png",
        "url": "http://x/in/a.png",
        "media_type": "image",
    }
    async with sessionmaker() as session, session.begin():
        task = await task_submissions.submit_task(
            session=session,
            defaults=task_specs.TaskDefaults(max_retries=0),
            spec=task_specs.TaskSpec(
                task_type="echo", queue="parked", media={"inputs": [item], "outputs": []}
            ),
        )
    body = (await http.get(f"{BASE}/tasks/{task.id}/media")).json()
    assert body == {"task_id": str(task.id), "inputs": [item], "outputs": []}


async def test_stats_filters(http: httpx.AsyncClient, rows: list[Task]) -> None:
    stats = (await http.get(f"{BASE}/stats")).json()
    assert stats["total_tasks"] == 6
    assert stats["by_status"] == {
        "PENDING": 1,
        "EXECUTING": 1,
        "COMPLETED": 2,
        "FAILED": 1,
        "CANCELLED": 1,
    }
    assert stats["by_task_type"] == {"ECHO": 3, "LLM": 3}
    assert stats["by_provider"] == {"SIMULATED": 3, "OPENAI": 1}
    assert stats["tasks_last_hour"] == 0 and stats["tasks_last_24h"] == 6
    only = (
        await http.get(f"{BASE}/stats", params={"origin_instance": "cam-1", "origin_zone": "eu"})
    ).json()
    assert only["total_tasks"] == 2


async def test_openapi_describes_the_shims(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        doc = (await http.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/api/v1/monitoring/tasks",
        "/api/v1/monitoring/tasks/{task_id}",
        "/api/v1/monitoring/tasks/{task_id}/media",
        "/api/v1/monitoring/stats",
        "/api/v1/monitoring/queues",
        "/api/v1/monitoring/workers",
        "/api/v1/monitoring/workers/health",
        "/api/v1/tasks",
        "/api/v1/metrics",
    ):
        assert path in paths, path
    params = {p["name"] for p in paths["/api/v1/monitoring/tasks"]["get"]["parameters"]}
    assert params == {
        "created_after",
        "created_before",
        "origin_instance",
        "origin_tenant_id",
        "origin_zone",
        "page",
        "page_size",
        "provider_type",
        "search",
        "sort_by",
        "sort_order",
        "status",
        "task_type",
    }
    assert {"HTTPBearer", "APIKeyHeader"} <= set(doc["components"]["securitySchemes"])
