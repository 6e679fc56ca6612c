"""Tenancy swept over every door: each REST route and each GraphQL root field has a row saying
what a tenant-scoped caller may do there, and a credential of every role, scoped to tenant A and
unscoped, is driven through all of them against tenant B's objects. A route or root field added
later without a row fails `test_every_route_has_a_row` / `test_every_root_field_has_a_row`; one
that declares no access fails when the app is built (app/rest/access.py, app/gql/permissions.py).

What a row needs of the role: a GET or a query/subscription reads, anything else operates,
ADMIN rows administer (installation-wide, so never a tenant credential)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from sqlalchemy import text

from app.auth.principals import ROLES
from app.config import Settings
from app.gql.schema import build_schema
from tests.client import GraphQLClient, rest_client
from tests.conftest import make_token
from tests.factories import insert_alert
from tests.receiver import Receiver
from tests.waiting import wait_for

TENANT_A, TENANT_B = "tenant-a", "tenant-b"
# what each role may do (app/auth/principals.py says it for the server; this is the test's own
# statement)
MAY: dict[str, set[str]] = {
    "platform_admin": {"read", "operate", "admin"},
    "super_admin": {"read", "operate", "admin"},
    "system_admin": {"read", "operate", "admin"},
    "ai_admin": {"read", "operate"},
    "tenant_admin": {"read", "operate"},
    "viewer": {"read"},
}
# a tenant_admin credential always names its tenant
UNSCOPED_ROLES = [r for r in ROLES if r != "tenant_admin"]


def _needs(route_or_field: str, kind: str) -> str:
    """The permission a REST route ("GET /x") or a root field ("Query.x") needs."""
    if kind == "ADMIN":
        return "admin"
    reads = route_or_field.startswith(("GET ", "Query.", "Subscription."))
    return "read" if reads else "operate"


# what B's objects say that nothing A reads may contain
B_SECRET_PATH = "b-secret-hook-path"
B_LOG_MARK = "b-private-log-line"

# --- the table: every REST route --------------------------------------------------------------
# PLATFORM: installation-wide (tenant: 403 insufficient_permissions).
# ADMIN: an admin role's (tenant_admin holds none: 403).
# LIST: tenant-scoped reading without an id (A sees none of B's rows).
# B:<kind>: tenant-scoped on an object of that kind (A against B's: 404, or 409 where noted).
# CREATE: makes an object in the caller's own tenant (checked by the tests of that domain and
# by `test_tenant_creations_are_stamped_with_the_tenant`).
REST: dict[str, str] = {
    "POST /api/v1/workflows": "CREATE",
    "GET /api/v1/schedules": "LIST",
    "POST /api/v1/schedules": "CREATE",
    "GET /api/v1/schedules/{schedule_id}": "B:schedule",
    "PUT /api/v1/schedules/{schedule_id}": "B:schedule",
    "DELETE /api/v1/schedules/{schedule_id}": "B:schedule",
    "POST /api/v1/schedules/{schedule_id}/pause": "B:schedule",
    "POST /api/v1/schedules/{schedule_id}/resume": "B:schedule",
    "POST /api/v1/schedules/{schedule_id}/trigger": "B:schedule",
    "GET /api/v1/monitoring/workflows": "LIST",
    "GET /api/v1/monitoring/workflows/stats": "LIST",
    "GET /api/v1/monitoring/workflows/{workflow_id}": "B:workflow",
    "POST /api/v1/monitoring/agents/{agent_id}/heartbeat": "B:agent",
    "GET /api/v1/monitoring/agents": "LIST",
    "GET /api/v1/monitoring/agents/{agent_id}": "B:agent",
    "POST /api/v1/monitoring/agents/{agent_id}/pause": "B:agent",
    "POST /api/v1/monitoring/agents/{agent_id}/resume": "B:agent",
    "POST /api/v1/monitoring/agents/{agent_id}/restart": "B:agent",
    "POST /api/v1/monitoring/agents/{agent_id}/scale": "B:agent",
    "GET /api/v1/monitoring/alerts": "LIST",
    "POST /api/v1/monitoring/alerts/{alert_id}/acknowledge": "B:alert",
    "POST /api/v1/monitoring/alerts/{alert_id}/resolve": "B:alert",
    "GET /api/v1/monitoring/alerts/rules": "LIST",
    "PUT /api/v1/monitoring/alerts/rules": "PLATFORM",
    "POST /api/v1/monitoring/logs": "CREATE",
    "GET /api/v1/monitoring/logs": "LIST",
    "GET /api/v1/monitoring/metrics": "LIST",
    "POST /api/v1/monitoring/metrics/export": "CREATE",
    "GET /api/v1/monitoring/metrics/export/{export_id}": "B:export",
    "GET /api/v1/monitoring/metrics/export/{export_id}/download": "B:export",
    "GET /api/v1/monitoring/dashboard": "LIST",
    "GET /api/v1/monitoring/health": "LIST",
    "GET /api/v1/monitoring/webhooks": "LIST",
    "POST /api/v1/monitoring/webhooks": "CREATE",
    "DELETE /api/v1/monitoring/webhooks/{subscription_id}": "B:subscription",
    "GET /api/v1/monitoring/webhooks/{subscription_id}/deliveries": "B:subscription",
    "GET /api/v1/monitoring/tasks": "LIST",
    "GET /api/v1/monitoring/tasks/{task_id}": "B:task",
    "GET /api/v1/monitoring/tasks/{task_id}/media": "B:task",
    "GET /api/v1/monitoring/tasks/{task_id}/media/{name}": "B:task",
    "GET /api/v1/monitoring/stats": "LIST",
    "GET /api/v1/monitoring/queues": "LIST",
    "GET /api/v1/monitoring/workers": "PLATFORM",
    "GET /api/v1/monitoring/workers/health": "PLATFORM",
    "GET /api/v1/llm/stats": "LIST",
    "DELETE /api/v1/llm/stats": "ADMIN",
    "GET /api/v1/llm/tasks": "LIST",
    "DELETE /api/v1/llm/tasks": "B:llm_bulk",
    "GET /api/v1/llm/tasks/{task_id}": "B:llm",
    "DELETE /api/v1/llm/tasks/{task_id}": "B:llm",
    "DELETE /api/v1/llm/semaphore": "ADMIN",
    "POST /api/v1/tasks": "CREATE",
    "GET /api/v1/metrics": "LIST",
    "POST /api/v1/tasks/batch": "CREATE",
    "GET /api/enrichment": "PLATFORM",
    "GET /api/enrichment/stats": "PLATFORM",
    "GET /api/enrichment/detection/{detection_id}": "PLATFORM",
    "GET /api/enrichment/event/{event_id}": "PLATFORM",
    "POST /api/enrichment/reprocess/{detection_id}": "PLATFORM",
    "GET /api/enrichment/{enrichment_id}": "PLATFORM",
    "GET /api/batches": "PLATFORM",
    "GET /api/batches/stats": "PLATFORM",
    "GET /api/batches/active": "PLATFORM",
    "GET /api/batches/{batch_id}": "PLATFORM",
    "POST /api/batches/{batch_id}/flush": "PLATFORM",
    "GET /api/dlq/stats": "PLATFORM",
    "GET /api/dlq/jobs/{queue_name}": "PLATFORM",
    "POST /api/dlq/requeue/{queue_name}": "PLATFORM",
    "POST /api/dlq/requeue-all/{queue_name}": "PLATFORM",
    "DELETE /api/dlq/{queue_name}": "PLATFORM",
    "POST /api/jobs": "CREATE",
    "GET /api/jobs": "LIST",
    "GET /api/jobs/search": "LIST",
    "GET /api/jobs/stats": "LIST",
    "GET /api/jobs/types": "LIST",
    "POST /api/jobs/bulk-cancel": "B:job_bulk",
    "GET /api/jobs/{job_id}": "B:job",
    "DELETE /api/jobs/{job_id}": "B:job",
    "GET /api/jobs/{job_id}/detail": "B:job",
    "GET /api/jobs/{job_id}/history": "B:job",
    "GET /api/jobs/{job_id}/logs": "B:job",
    "GET /api/jobs/{job_id}/download": "B:job",
    "POST /api/jobs/{job_id}/cancel": "B:job",
    "POST /api/jobs/{job_id}/abort": "B:job",
    "GET /api/ai-audit/prompt-config/{model}": "PLATFORM",
    "PUT /api/ai-audit/prompt-config/{model}": "PLATFORM",
    "GET /api/ai-audit/prompts": "PLATFORM",
    "GET /api/ai-audit/prompts/export": "PLATFORM",
    "GET /api/ai-audit/prompts/history": "PLATFORM",
    "GET /api/ai-audit/prompts/history/{ref}": "PLATFORM",
    "POST /api/ai-audit/prompts/history/{ref}": "PLATFORM",
    "POST /api/ai-audit/prompts/import": "PLATFORM",
    "GET /api/ai-audit/prompts/{model}": "PLATFORM",
    "PUT /api/ai-audit/prompts/{model}": "PLATFORM",
    "POST /api/ai-audit/prompts/test": "PLATFORM",
    "POST /api/ai-audit/test-prompt": "PLATFORM",
    "GET /api/ai-audit/events/{event_id}": "PLATFORM",
    "POST /api/ai-audit/events/{event_id}/evaluate": "PLATFORM",
    "POST /api/ai-audit/batch": "PLATFORM",
    "GET /api/ai-audit/leaderboard": "PLATFORM",
    "GET /api/ai-audit/recommendations": "PLATFORM",
    "GET /api/ai-audit/stats": "PLATFORM",
    "GET /api/system/circuit-breakers": "PLATFORM",
    "POST /api/system/circuit-breakers/{name}/reset": "PLATFORM",
    "GET /api/system/health": "PLATFORM",
}

# bodies that pass validation, so what answers is the tenant rule and not a 422
BODIES: dict[str, Any] = {
    "POST /api/v1/monitoring/agents/{agent_id}/heartbeat": {"name": "x", "type": "llm_agent"},
    "POST /api/v1/monitoring/agents/{agent_id}/pause": {"reason": "r"},
    "POST /api/v1/monitoring/agents/{agent_id}/resume": {},
    "POST /api/v1/monitoring/agents/{agent_id}/restart": {"reason": "r"},
    "POST /api/v1/monitoring/agents/{agent_id}/scale": {"replicas": 3},
    "POST /api/v1/monitoring/alerts/{alert_id}/acknowledge": {"notes": "mine now"},
    "POST /api/v1/monitoring/alerts/{alert_id}/resolve": {"resolution": "gone"},
    "PUT /api/v1/schedules/{schedule_id}": {"name": "n", "cron": "0 * * * *", "task_type": "echo"},
}


@dataclass
class Objects:
    """Tenant B's objects, by kind: the ids a path takes."""

    ids: dict[str, str]

    def markers(self) -> list[str]:
        return [*self.ids.values(), TENANT_B, B_SECRET_PATH, B_LOG_MARK]


def _path(template: str, objects: Objects, kind: str) -> str:
    out = template
    for name in (
        "workflow_id",
        "agent_id",
        "alert_id",
        "export_id",
        "subscription_id",
        "schedule_id",
    ):
        out = out.replace("{" + name + "}", objects.ids.get(name.removesuffix("_id"), "x"))
    out = out.replace("{task_id}", objects.ids["llm" if kind == "B:llm" else "task"])
    out = out.replace("{job_id}", objects.ids["job"])
    for name, dummy in (
        ("{detection_id}", "1"),
        ("{event_id}", "1"),
        ("{enrichment_id}", "1"),
        ("{batch_id}", "batch_1"),
        ("{queue_name}", "llm"),
        ("{model}", "nemotron"),
        ("{ref}", "1"),
        ("{name}", "yolo26"),
    ):
        out = out.replace(name, dummy)
    return out


async def _counts(engine: Any) -> dict[str, int]:
    tables = (
        "tasks",
        "task_transitions",
        "workflows",
        "agents",
        "agent_controls",
        "agent_logs",
        "alerts",
        "alert_rules",
        "webhook_subscriptions",
        "prompt_versions",
        "batches",
    )
    # (the session's workers report themselves as agents at any moment: not counted)
    where = {"agents": " WHERE id NOT LIKE 'opsgraph_worker_%'"}
    async with engine.connect() as conn:
        return {
            t: int(await conn.scalar(text(f"SELECT count(*) FROM {t}{where.get(t, '')}")))
            for t in tables
        }


async def _snapshot(engine: Any, objects: Objects) -> list[Any]:
    """B's objects as stored: a refused call changes none of them."""
    async with engine.connect() as conn:
        rows: list[Any] = []
        for sql, key in (
            ("SELECT status, cancel_requested_at FROM tasks WHERE id = :id", "task"),
            ("SELECT status, cancel_requested_at FROM tasks WHERE id = :id", "llm"),
            ("SELECT status, cancel_requested_at FROM tasks WHERE id = :id", "job"),
            (
                "SELECT desired_state, replicas, restart_generation FROM agents WHERE id = :id",
                "agent",
            ),
            ("SELECT status, acknowledged_by, resolved_by FROM alerts WHERE id = :id", "alert"),
            ("SELECT url FROM webhook_subscriptions WHERE id = :id", "subscription"),
        ):
            found = (await conn.execute(text(sql), {"id": objects.ids[key]})).all()
            rows.append((key, [tuple(r) for r in found]))
    return rows


@pytest.fixture
async def b_objects(
    server: str, settings: Settings, engine: Any, worker: Any
) -> AsyncIterator[Objects]:
    """Given tenant B with one object of every kind a tenant owns."""
    ids: dict[str, str] = {}
    async with GraphQLClient(server, make_token(settings, "tenant_admin", TENANT_B)) as gql:
        b = gql.http  # the same credential's REST door
        for kind, task_type in (("task", "echo"), ("llm", "llm")):
            payload = (
                await gql.data(
                    "SubmitTask",
                    input={"taskType": task_type, "queue": "parked", "input": {"prompt": "b"}},
                )
            )["submitTask"]
            assert payload["errors"] == [], payload
            ids[kind] = payload["task"]["id"]
        r = await b.post(
            "/api/v1/workflows",
            json={"name": "b-flow", "steps": [{"step_id": "a", "task_type": "echo"}]},
        )
        assert r.status_code in (200, 201), r.text
        ids["workflow"] = r.json()["id"]
        r = await b.post(
            "/api/v1/schedules",
            json={"name": "b-schedule", "cron": "0 0 1 1 *", "task_type": "echo"},
        )
        assert r.status_code == 201, r.text
        ids["schedule"] = r.json()["id"]
        r = await b.post(
            "/api/v1/monitoring/agents/agent-of-b/heartbeat",
            json={"name": "b's agent", "type": "llm_agent"},
        )
        assert r.status_code == 200, r.text
        ids["agent"] = "agent-of-b"
        r = await b.post(
            "/api/v1/monitoring/logs",
            json={
                "logs": [
                    {
                        "timestamp": datetime.now(UTC).isoformat(),
                        "level": "error",
                        "message": B_LOG_MARK,
                        "agent_id": "agent-of-b",
                    }
                ]
            },
        )
        assert r.status_code in (200, 201, 202), r.text
        r = await b.post(
            "/api/v1/monitoring/webhooks",
            json={
                "url": f"https://hooks.example.com/{B_SECRET_PATH}",
                "events": ["monitoring.alert_triggered"],
            },
        )
        assert r.status_code == 201, r.text
        ids["subscription"] = r.json()["id"]
        r = await b.post(
            "/api/jobs",
            json={"job_type": "export", "params": {"target": "tasks", "format": "json"}},
        )
        assert r.status_code == 202, r.text
        ids["job"] = r.json()["job_id"]
        now = datetime.now(UTC)
        r = await b.post(
            "/api/v1/monitoring/metrics/export",
            json={"period": {"start": now.date().isoformat(), "end": now.date().isoformat()}},
        )
        assert r.status_code in (200, 202), r.text
        ids["export"] = r.json()["export_id"]
    ids["alert"] = await insert_alert(engine, agent="agent-of-b", tenant=TENANT_B)
    # B's job, export and workflow run to their end first, so what changes later is the sweep's

    async def busy() -> int:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    text(
                        "SELECT count(*) FROM tasks WHERE queue <> 'parked'"
                        " AND status IN ('QUEUED', 'RUNNING')"
                    )
                )
            )

    await wait_for(busy, until=lambda n: n == 0, timeout=30, what="B's tasks to settle")
    yield Objects(ids)


def _leaks(body: str, objects: Objects) -> list[str]:
    return [m for m in objects.markers() if m in body]


async def test_every_route_has_a_row(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        doc = (await http.get("/openapi.json")).json()
    served = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert served - REST.keys() == set(), "routes without a row in the tenancy table"
    assert REST.keys() - served == set(), "rows for routes that are not served"


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json().get("code") == "insufficient_permissions"


async def test_a_tenant_is_refused_installation_wide_routes_and_changes_nothing(
    server: str, settings: Settings, engine: Any, b_objects: Objects
) -> None:
    """Whatever its role: a credential naming a tenant is a tenant credential."""
    before = await _counts(engine), await _snapshot(engine, b_objects)
    for role in ROLES:
        async with rest_client(server, make_token(settings, role, TENANT_A)) as a:
            for route, access in REST.items():
                if access not in ("PLATFORM", "ADMIN"):
                    continue
                method, template = route.split(" ", 1)
                body = {} if method in ("POST", "PUT") else None
                r = await a.request(method, _path(template, b_objects, access), json=body)
                assert _refused(r), (role, route, r.status_code, r.text)
    assert (await _counts(engine), await _snapshot(engine, b_objects)) == before


async def test_a_tenant_reaches_none_of_another_tenants_objects(
    server: str, settings: Settings, engine: Any, b_objects: Objects
) -> None:
    before = await _counts(engine), await _snapshot(engine, b_objects)
    for role in ROLES:
        async with rest_client(server, make_token(settings, role, TENANT_A)) as a:
            for route, access in REST.items():
                if not access.startswith("B:") and access != "LIST":
                    continue
                await _reach_b(a, role, route, access, b_objects)
    # a refused action changes nothing: no row added or removed, none of B's objects touched
    assert (await _counts(engine), await _snapshot(engine, b_objects)) == before


async def _reach_b(
    a: httpx.AsyncClient, role: str, route: str, access: str, b_objects: Objects
) -> None:
    method, template = route.split(" ", 1)
    path = _path(template, b_objects, access)
    body = BODIES.get(route)
    if access == "B:job_bulk":
        body = {"job_ids": [b_objects.ids["job"]]}
    r = await a.request(method, path, json=body)
    assert r.status_code < 500, (role, route, r.text)
    if _needs(route, access) not in MAY[role]:
        assert _refused(r), (role, route, r.status_code, r.text)
    elif access == "LIST":
        assert r.status_code == 200, (role, route, r.status_code, r.text)
    elif route.endswith("/heartbeat"):
        # never a takeover: the id is B's
        assert r.status_code == 409 and r.json()["code"] == "agent_id_taken", r.text
    elif access == "B:job_bulk":
        assert r.json()["results"][0]["error"] == "Job not found", r.text
    elif access == "B:llm_bulk":
        assert r.status_code == 200 and r.json()["data"]["cancelled"] == 0, r.text
    else:
        # seed 000 answers an unknown task's cancel with 400
        expected = 400 if route == "DELETE /api/v1/llm/tasks/{task_id}" else 404
        assert r.status_code == expected, (role, route, r.status_code, r.text)
    asked = path + json.dumps(body)
    leaks = [m for m in _leaks(r.text, b_objects) if m not in asked]
    assert leaks == [], (role, route, leaks, r.text[:500])


async def test_unscoped_credentials_are_refused_by_their_role_alone(
    server: str, settings: Settings, engine: Any, b_objects: Objects
) -> None:
    """The other half of the sweep: without a tenant, every route answers by the role (403
    exactly when the role may not), B's objects included. Viewers change nothing."""
    for role in sorted(UNSCOPED_ROLES, key=lambda r: r != "viewer"):  # the viewer first
        before = await _counts(engine), await _snapshot(engine, b_objects)
        async with rest_client(server, make_token(settings, role)) as c:
            for route, access in REST.items():
                method, template = route.split(" ", 1)
                body = BODIES.get(route, {} if method in ("POST", "PUT") else None)
                r = await c.request(method, _path(template, b_objects, access), json=body)
                assert r.status_code < 500, (role, route, r.text)
                allowed = _needs(route, access) in MAY[role]
                assert _refused(r) != allowed, (role, route, r.status_code, r.text)
                assert r.status_code != 401, (role, route, r.text)
        if role == "viewer":
            assert (await _counts(engine), await _snapshot(engine, b_objects)) == before


async def test_tenant_creations_are_stamped_with_the_tenant(
    server: str, settings: Settings, engine: Any
) -> None:
    async with rest_client(server, make_token(settings, "tenant_admin", TENANT_A)) as a:
        r = await a.post(
            "/api/v1/monitoring/agents/agent-of-a/heartbeat", json={"name": "a", "type": "t"}
        )
        assert r.status_code == 200, r.text
        r = await a.post(
            "/api/v1/monitoring/webhooks",
            json={"url": "https://hooks.example.com/a", "events": ["monitoring.alert_triggered"]},
        )
        assert r.status_code == 201, r.text
        r = await a.post("/api/jobs", json={"job_type": "export", "params": {"target": "logs"}})
        assert r.status_code == 202, r.text
    async with engine.connect() as conn:
        owners = (
            await conn.execute(
                text(
                    "SELECT 'agent', tenant_id FROM agents WHERE id = 'agent-of-a'"
                    " UNION ALL SELECT 'sub', tenant_id FROM webhook_subscriptions"
                    " UNION ALL SELECT 'job', origin_tenant_id FROM tasks"
                    " WHERE task_type = 'export'"
                )
            )
        ).all()
    assert sorted(owners) == [("agent", TENANT_A), ("job", TENANT_A), ("sub", TENANT_A)]


# --- the table: every GraphQL root field --------------------------------------------------------
# Same words as REST's; B:<kind> fields take B's id (`id`, `ids`, `agentId`, `input`).
GQL: dict[str, str] = {
    "Query.task": "B:task",
    "Query.tasks": "LIST",
    "Query.workflow": "B:workflow",
    "Query.workflows": "LIST",
    "Query.workflowStats": "LIST",
    "Query.taskStats": "LIST",
    "Query.queueStats": "LIST",
    # types are installation-wide (workers register them); counts are the caller's tenant's
    "Query.taskTypes": "LIST",
    "Query.workerStats": "PLATFORM",
    "Query.workerHealth": "PLATFORM",
    "Query.llmStats": "LIST",
    "Query.llmTasks": "LIST",
    "Query.securityEvents": "PLATFORM",
    "Query.securityEvent": "PLATFORM",
    "Query.batches": "PLATFORM",
    "Query.batch": "PLATFORM",
    "Query.activeBatches": "PLATFORM",
    "Query.batchStats": "PLATFORM",
    "Query.enrichments": "PLATFORM",
    "Query.enrichmentStats": "PLATFORM",
    "Query.dlqStats": "PLATFORM",
    "Query.dlqJobs": "PLATFORM",
    "Query.circuitBreakers": "PLATFORM",
    "Query.systemHealth": "PLATFORM",
    "Query.agents": "LIST",
    "Query.agent": "B:agent",
    "Query.alerts": "LIST",
    "Query.alertSummary": "LIST",
    "Query.alert": "B:alert",
    "Query.alertRules": "LIST",
    "Query.alertMetrics": "LIST",
    "Query.logs": "LIST",
    "Query.metrics": "LIST",
    "Query.dashboard": "LIST",
    "Query.monitoringHealth": "LIST",
    "Query.webhookSubscriptions": "LIST",
    "Query.webhookEvents": "LIST",
    "Query.jobs": "LIST",
    "Query.jobFacets": "LIST",
    "Query.job": "B:job",
    "Query.jobTypes": "LIST",
    "Query.jobStats": "LIST",
    "Query.prompt": "PLATFORM",
    "Query.prompts": "PLATFORM",
    "Query.promptHistory": "PLATFORM",
    "Query.eventAudit": "PLATFORM",
    "Query.auditStats": "PLATFORM",
    "Query.modelLeaderboard": "PLATFORM",
    "Query.serverMetrics": "LIST",
    "Query.viewer": "LIST",
    "Query.detection": "PLATFORM",
    "Query.cameras": "PLATFORM",
    "Query.enrichment": "PLATFORM",
    "Query.promptHistories": "PLATFORM",
    "Query.promptExport": "PLATFORM",
    "Query.auditRecommendations": "PLATFORM",
    "Mutation.ingestLogs": "CREATE",
    "Mutation.batchAudit": "PLATFORM",
    "Subscription.circuitBreakerChanged": "PLATFORM",
    "Subscription.logTail": "LIST",
    "Subscription.workersChanged": "PLATFORM",
    "Mutation.submitTask": "CREATE",
    "Mutation.submitTasks": "CREATE",
    "Mutation.cancelTask": "B:task",
    "Mutation.retryTask": "B:task",
    "Mutation.createWorkflow": "CREATE",
    "Query.schedules": "LIST",
    "Query.schedule": "B:schedule",
    "Mutation.createSchedule": "CREATE",
    "Mutation.updateSchedule": "B:schedule",
    "Mutation.pauseSchedule": "B:schedule",
    "Mutation.resumeSchedule": "B:schedule",
    "Mutation.triggerSchedule": "B:schedule",
    "Mutation.deleteSchedule": "B:schedule",
    "Subscription.scheduleChanged": "LIST",
    "Mutation.pauseWorkflow": "B:workflow",
    "Mutation.resumeWorkflow": "B:workflow",
    "Mutation.cancelWorkflow": "B:workflow",
    "Mutation.retryWorkflow": "B:workflow",
    "Mutation.approveStep": "B:workflow",
    "Mutation.rejectStep": "B:workflow",
    "Mutation.signalWorkflow": "B:workflow",
    "Mutation.cancelAllLlmTasks": "LIST",
    "Mutation.clearLlmStats": "ADMIN",
    "Mutation.clearLlmSemaphore": "ADMIN",
    "Mutation.flushBatch": "PLATFORM",
    "Mutation.reprocessEnrichment": "PLATFORM",
    "Mutation.requeueDlqJob": "PLATFORM",
    "Mutation.requeueAllDlqJobs": "PLATFORM",
    "Mutation.clearDlq": "PLATFORM",
    "Mutation.resetCircuitBreaker": "PLATFORM",
    "Mutation.reportHeartbeat": "B:agent",
    "Mutation.pauseAgent": "B:agent",
    "Mutation.resumeAgent": "B:agent",
    "Mutation.restartAgent": "B:agent",
    "Mutation.scaleAgent": "B:agent",
    "Mutation.ackAlert": "B:alert",
    "Mutation.resolveAlert": "B:alert",
    "Mutation.setAlertRules": "PLATFORM",
    "Mutation.createWebhookSubscription": "CREATE",
    "Mutation.deleteWebhookSubscription": "B:subscription",
    "Mutation.startJob": "CREATE",
    "Mutation.cancelJob": "B:job",
    "Mutation.abortJob": "B:job",
    "Mutation.bulkCancelJobs": "B:job",
    "Mutation.updatePrompt": "PLATFORM",
    "Mutation.restorePrompt": "PLATFORM",
    "Mutation.importPrompts": "PLATFORM",
    "Mutation.testPrompt": "PLATFORM",
    "Mutation.evaluateEvent": "PLATFORM",
    "Subscription.taskUpdated": "LIST",
    "Subscription.queueStats": "LIST",
    "Subscription.workflowUpdated": "B:workflow",
    "Subscription.llmStats": "LIST",
    "Subscription.securityEvents": "PLATFORM",
    "Subscription.batchUpdated": "PLATFORM",
    "Subscription.dlqChanged": "PLATFORM",
    "Subscription.alertChanged": "LIST",
    "Subscription.agentStatusChanged": "LIST",
    "Subscription.jobProgress": "B:job",
}


def _schema(settings: Settings) -> GraphQLSchema:
    schema: GraphQLSchema = build_schema(settings)._schema
    return schema


def _literal(t: Any, depth: int = 0) -> str | None:
    """A valid literal for a required argument's type (None: leave an optional one out)."""
    if not isinstance(t, GraphQLNonNull):
        return None
    inner = t.of_type
    if isinstance(inner, GraphQLList):
        return "[]"
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        parts = [
            f"{n}: {v}"
            for n, f in inner.fields.items()
            if f.default_value is Undefined and (v := _literal(f.type, depth + 1)) is not None
        ]
        return "{" + ", ".join(parts) + "}"
    assert isinstance(inner, GraphQLScalarType)
    return {
        "Int": "1",
        "Float": "1.0",
        "Boolean": "false",
        "UUID": '"00000000-0000-0000-0000-000000000000"',
        "JSON": "{}",
        "DateTime": '"2026-01-01T00:00:00Z"',
    }.get(inner.name, '"x"')


def _selection(t: Any, depth: int = 0) -> str:
    """Every field without required arguments, a few levels deep: what a leak would show."""
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    if not isinstance(t, GraphQLObjectType):
        return ""
    parts = []
    for name, f in t.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) for a in f.args.values()):
            continue
        if name == "thumbnail":
            continue  # weighed heavily by the cost rule; a string, never another tenant's
        inner = f.type
        while isinstance(inner, GraphQLNonNull | GraphQLList):
            inner = inner.of_type
        if isinstance(inner, GraphQLObjectType):
            if depth < 3:
                # nested lists asked small, so the cost rule admits the whole selection
                sizes = [a for a in ("first", "limit") if a in f.args and depth > 0]
                call = f"{name}({sizes[0]}: 2)" if sizes else name
                parts.append(f"{call} {_selection(inner, depth + 1)}")
        else:
            parts.append(name)
    return "{ " + " ".join(parts or ["__typename"]) + " }"


# values that pass the arguments' own rules, so the tenant rule is what answers
NAMED_ARGS = {"period": '"24h"', "model": '"nemotron"', "queue": '"llm"'}


def _document(schema: GraphQLSchema, root: str, name: str, kind: str, objects: Objects) -> str:
    field = schema.type_map[root].fields[name]  # type: ignore[attr-defined]
    target = objects.ids.get(kind.removeprefix("B:"), "") if kind.startswith("B:") else ""
    args = []
    for arg_name, arg in field.args.items():
        value = NAMED_ARGS.get(arg_name) or _literal(arg.type)
        if target and arg_name == "id":
            value = json.dumps(target)
        elif target and arg_name == "ids":
            value = json.dumps([target])
        elif target and arg_name in ("agentId", "workflowId"):
            value = json.dumps(target)
        elif target and arg_name == "input" and kind in ("B:task", "B:workflow"):
            value = "{" + f"id: {json.dumps(target)}" + "}"
        if kind == "B:agent" and arg_name == "input":
            value = '{name: "x", type: "t"}'
        if value is not None:
            args.append(f"{arg_name}: {value}")
    keyword = {"Query": "query", "Mutation": "mutation", "Subscription": "subscription"}[root]
    call = f"{name}({', '.join(args)})" if args else name
    return f"{keyword} {{ {call} {_selection(field.type)} }}"


def test_every_root_field_has_a_row(settings: Settings) -> None:
    schema = _schema(settings)
    fields = {
        f"{root}.{name}"
        for root in ("Query", "Mutation", "Subscription")
        for name in schema.type_map[root].fields  # type: ignore[attr-defined]
    }
    assert fields - GQL.keys() == set(), "root fields without a row in the tenancy table"
    assert GQL.keys() - fields == set(), "rows for root fields that do not exist"


async def _ws_first(
    server: str, token: str, document: str, timeout: float
) -> dict[str, Any] | None:
    """The first message a subscription answers with (None: nothing within `timeout`)."""
    url = server.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        try:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        except TimeoutError:
            return None
        return message


async def test_graphql_root_fields_hold_the_tenant_rules(
    server: str, settings: Settings, engine: Any, b_objects: Objects
) -> None:
    schema = _schema(settings)
    before = await _counts(engine), await _snapshot(engine, b_objects)
    for role in ROLES:
        token = make_token(settings, role, TENANT_A)
        a = GraphQLClient(server, token)
        try:
            checks = [
                _gql_as_tenant(a, server, token, schema, key, kind, role, b_objects)
                for key, kind in GQL.items()
                if kind != "CREATE"
            ]
            # subscriptions wait for a first message: all of a role's at once
            await asyncio.gather(*checks)
        finally:
            await a.aclose()
    assert (await _counts(engine), await _snapshot(engine, b_objects)) == before


async def _gql_as_tenant(
    a: GraphQLClient,
    server: str,
    token: str,
    schema: GraphQLSchema,
    key: str,
    kind: str,
    role: str,
    b_objects: Objects,
) -> None:
    root, name = key.split(".")
    document = _document(schema, root, name, kind, b_objects)
    refused = kind in ("PLATFORM", "ADMIN") or _needs(key, kind) not in MAY[role]
    if root == "Subscription":
        # an answer is awaited where one is due (a refusal, B's id); elsewhere, silence
        answers = refused or kind.startswith("B:")
        first = await _ws_first(server, token, document, timeout=10 if answers else 0.5)
        text_ = json.dumps(first)
        if refused:
            assert first and first["type"] == "error", (role, key, first)
            assert "FORBIDDEN" in text_, (role, key, first)
        leaks = [m for m in _leaks(text_, b_objects) if m not in document]
        assert leaks == [], (role, key, first)
        if kind.startswith("B:"):
            assert first and "NOT_FOUND" in text_, (role, key, first)
        return
    response = await a.raw(document)
    assert response.status_code == 200, (role, key, response.text)
    body = response.json()
    errors = body.get("errors") or []
    codes = [e.get("extensions", {}).get("code") for e in errors]
    if refused:
        assert codes and codes[0] == "FORBIDDEN", (role, key, document, body)
        return
    assert "FORBIDDEN" not in codes, (role, key, body)
    assert "INTERNAL_SERVER_ERROR" not in codes and not any(
        e["message"] == "Unexpected error." for e in errors
    ), (role, key, document, body)
    assert not [c for c in codes if c in ("GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")], (
        role,
        key,
        document,
        body,
    )
    data = json.dumps(body.get("data"))
    leaks = [m for m in _leaks(data, b_objects) if m not in document]
    assert leaks == [], (role, key, leaks, data[:500])
    if kind.startswith("B:") and root == "Query":
        assert body["data"][name] is None, (role, key, body)
    if kind.startswith("B:") and root == "Mutation":
        assert body["data"], (role, key, document, body)
        payload = body["data"][name]
        if name == "bulkCancelJobs":
            assert payload["successful"] == 0, (role, key, payload)
            return
        assert payload["errors"], (role, key, payload)
        assert payload["errors"][0]["code"] in (
            "NOT_FOUND",
            "agent_not_found",
            "alert_not_found",
            "subscription_not_found",
            "job_not_found",
            "agent_id_taken",
        ), (role, key, payload)


async def test_unscoped_graphql_credentials_are_refused_by_their_role_alone(
    server: str, settings: Settings, b_objects: Objects
) -> None:
    schema = _schema(settings)

    async def check(client: GraphQLClient, token: str, role: str, key: str, kind: str) -> None:
        root, name = key.split(".")
        document = _document(schema, root, name, kind, b_objects)
        allowed = _needs(key, kind) in MAY[role]
        if root == "Subscription":
            first = await _ws_first(server, token, document, timeout=0.5 if allowed else 10)
            forbidden = bool(first and first["type"] == "error" and "FORBIDDEN" in str(first))
        else:
            body = (await client.raw(document)).json()
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
            assert "INTERNAL_SERVER_ERROR" not in codes, (role, key, body)
            forbidden = "FORBIDDEN" in codes
        assert forbidden != allowed, (role, key, allowed, document)

    for role in UNSCOPED_ROLES:
        token = make_token(settings, role)
        client = GraphQLClient(server, token)
        try:
            await asyncio.gather(
                *(check(client, token, role, k, v) for k, v in GQL.items() if v != "CREATE")
            )
        finally:
            await client.aclose()


async def test_exports_and_webhook_deliveries_hold_none_of_another_tenants_rows(
    server: str, settings: Settings, b_objects: Objects
) -> None:
    async with (
        Receiver() as receiver,
        rest_client(server, make_token(settings, "tenant_admin", TENANT_A)) as a,
        rest_client(server, make_token(settings, "tenant_admin", TENANT_B)) as b,
    ):
        # given A's exports of every target it may export, and A's webhook subscription
        jobs = []
        for target in ("tasks", "logs"):
            r = await a.post(
                "/api/jobs",
                json={"job_type": "export", "params": {"target": target, "format": "json"}},
            )
            assert r.status_code == 202, r.text
            jobs.append(r.json()["job_id"])
        r = await a.post(
            "/api/v1/monitoring/webhooks",
            json={"url": receiver.hook_url, "events": ["monitoring.agent_status_changed"]},
        )
        assert r.status_code == 201, r.text
        # when B's agent changes status, and then A's
        r = await b.post(
            "/api/v1/monitoring/agents/another-of-b/heartbeat", json={"name": "b", "type": "t"}
        )
        assert r.status_code == 200, r.text
        r = await a.post(
            "/api/v1/monitoring/agents/agent-of-a/heartbeat", json={"name": "a", "type": "t"}
        )
        assert r.status_code == 200, r.text

        def bodies() -> list[bytes]:
            return [got.body for got in receiver.received]

        await wait_for(
            lambda: any(b"agent-of-a" in body for body in bodies()),
            what="A's own delivery",
        )
        # then A's receiver heard of A's agent only, and A's files hold none of B's rows
        assert not any(b"another-of-b" in body or b"agent-of-b" in body for body in bodies())
        for job_id in jobs:
            await wait_for(
                lambda job_id=job_id: a.get(f"/api/jobs/{job_id}"),
                until=lambda r: r.json()["status"] == "completed",
                what=f"export {job_id} to complete",
            )
            r = await a.get(f"/api/jobs/{job_id}/download")
            assert r.status_code == 200, r.text
            assert _leaks(r.text, b_objects) == [], r.text[:500]
