"""The console in a real browser (Playwright driving Debian's Chromium) against the session's
server and worker: the dev banner's one-time link (no token in the browser's history, no second
use), live rows, actions checked through the API afterwards, roles and tenants, no request to
another origin nor policy violation, GraphiQL offline, and screenshots of every view
(docs/console).

Without Chromium these tests skip with the reason; CI installs it and sets
OPSGRAPH_REQUIRE_BROWSER=1, under which a missing browser fails instead."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import text

from app.config import Settings
from app.console import codes
from tests.client import GraphQLClient
from tests.conftest import make_token, wait_for_status
from tests.factories import insert_alert, insert_batch, insert_detection
from tests.processes import Proc, start_dev, stop_dev, wait_banner
from tests.test_own_task_types import submit, types_served, write_package
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "console"
CHROMIUM = os.environ.get("OPSGRAPH_CHROMIUM") or shutil.which("chromium")
VIEWS = [
    "Overview",
    "Tasks",
    "Workflows",
    "Schedules",
    "Pipeline",
    "DLQ",
    "Jobs",
    "Agents",
    "Alerts",
    "Prompts",
]

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # pragma: no cover - the [test] extra installs it
    async_playwright = None  # type: ignore[assignment]


def _browser_missing() -> str | None:
    if async_playwright is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if CHROMIUM is None:
        return "no Chromium on this machine (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("OPSGRAPH_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests required but {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        await launched.close()


class Session:
    """A page signed in through the dev banner's URL, recording every request it makes."""

    def __init__(self, page: Page, server: str) -> None:
        self.page = page
        self.server = server
        self.requests: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        self.dialogs: list[str] = []

    def answer_dialogs(self, reply: str) -> None:
        async def handle(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.accept(reply)

        self.page.on("dialog", handle)

    async def open(self, view: str) -> None:
        await self.page.get_by_role("link", name=view, exact=True).click()
        await self.page.wait_for_selector(f'main[data-ready="{view.lower()}"]', timeout=10_000)

    def foreign(self) -> list[str]:
        own = urlsplit(self.server).netloc
        return [u for u in self.requests if urlsplit(u).netloc not in (own, "")]


def sign_in_link(server: str, settings: Settings, token: str) -> str:
    """A link like the dev banner's: a one-time code for `token`, never the token itself."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        code = codes.mint(client, token, ttl_seconds=60)
    finally:
        client.close()
    return f"{server}/console#code={code}"


async def _session(
    browser: Browser,
    server: str,
    settings: Settings,
    token: str,
    viewport: tuple[int, int] = (1280, 800),
) -> Session:
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    session = Session(await context.new_page(), server)
    await session.page.goto(sign_in_link(server, settings, token))
    await session.page.wait_for_selector('main[data-ready="overview"]', timeout=15_000)
    return session


async def _close(session: Session) -> None:
    await session.page.context.close()


async def _shot(session: Session, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await session.page.screenshot(path=str(SHOTS / f"{name}.png"))


async def _submit(admin: GraphQLClient, **input: Any) -> str:
    payload = (await admin.data("SubmitTask", input={"taskType": "echo", **input}))["submitTask"]
    assert payload["errors"] == [], payload
    return str(payload["task"]["id"])


async def _status(admin: GraphQLClient, task_id: str) -> str:
    return str((await admin.data("Task", id=task_id))["task"]["status"])


def history_urls(profile: Path) -> list[str]:
    """Every URL in the History database of a Chromium profile (closed: it is written then)."""
    copy = profile / "History.read"
    shutil.copyfile(profile / "Default" / "History", copy)
    with closing(sqlite3.connect(copy)) as db:
        return [url for (url,) in db.execute("SELECT url FROM urls")]


async def test_the_dev_banners_link_signs_in_once_and_leaves_no_token_in_history(
    browser: Browser, tmp_path: Path
) -> None:
    dev, _, log = start_dev(tmp_path / "dev")
    try:
        banner = await asyncio.to_thread(wait_banner, dev, log)
        link = re.search(r"console\s+(\S+#code=\S+)", banner)
        token = re.search(r"admin token (\S+)", banner)
        assert link and token, banner
        assert token.group(1) not in link.group(1)
        # a browser with its profile on disk, as a user's: its History is where the token was
        # found after one visit of the old `/console#token=...` link
        profile = tmp_path / "profile"
        context = await browser.browser_type.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
            viewport={"width": 1280, "height": 800},
        )
        try:
            page = await context.new_page()
            await page.goto(link.group(1))
            await page.wait_for_selector("#queues tr[data-queue='llm']", timeout=20_000)
            # signed in; the code left the address bar and the token is kept for this tab only
            assert "code=" not in page.url and token.group(1) not in page.url
            kept = await page.evaluate("sessionStorage.getItem('opsgraph.credential')")
            assert kept == token.group(1)
            assert await page.evaluate("localStorage.length") == 0
            await page.get_by_role("link", name="Tasks", exact=True).click()
            await page.wait_for_selector('main[data-ready="tasks"]', timeout=10_000)
        finally:
            await context.close()
        visited = history_urls(profile)
        assert any("/console" in url for url in visited), visited  # the visit was recorded
        assert [url for url in visited if token.group(1) in url or "token=" in url] == []
        # the link is spent: another browser opening it gets the sign-in form, saying why
        again = await browser.new_context()
        try:
            page = await again.new_page()
            await page.goto(link.group(1))
            await page.wait_for_selector("#signin:not([hidden])", timeout=15_000)
            assert "used already or has expired" in await page.locator("#signin-error").inner_text()
            assert await page.evaluate("sessionStorage.getItem('opsgraph.credential')") is None
            assert "code=" not in page.url
        finally:
            await again.close()
    finally:
        await asyncio.to_thread(stop_dev, dev)


async def test_the_sign_in_form_takes_an_api_key(
    browser: Browser, server: str, engine: Any
) -> None:
    from app.auth import api_keys
    from app.db.base import make_sessionmaker

    async with make_sessionmaker(engine)() as session, session.begin():
        _, key = await api_keys.create_api_key(
            session=session, name="console", role="viewer", tenant_id=None
        )
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(f"{server}/console")
        await page.fill("#credential", key)
        await page.click("#signin button[type=submit]")
        # signed in (queries over HTTP and the live feed over the websocket, with the key)
        await page.wait_for_selector("#queues tr[data-queue='llm']", timeout=15_000)
        assert "viewer" in await page.locator("#who").inner_text()
        await page.wait_for_selector("#live.on", timeout=10_000)
        # and a credential the API refuses brings the form back, saying so
        await page.evaluate("sessionStorage.setItem('opsgraph.credential', 'not-a-key')")
        await page.reload()
        await page.wait_for_selector("#signin:not([hidden])")
        assert "refused" in await page.locator("#signin-error").inner_text()
    finally:
        await context.close()


async def test_the_banner_url_signs_in_and_tasks_appear_live(
    browser: Browser, server: str, settings: Settings, admin: GraphQLClient, worker: Proc
) -> None:
    session = await _session(browser, server, settings, make_token(settings))
    page = session.page
    try:
        # the one-time code left the address bar as soon as it was read
        assert "code=" not in page.url
        # the Overview shows the queues
        await page.wait_for_selector("#queues tr[data-queue='llm']", timeout=10_000)
        assert [await a.inner_text() for a in await page.locator("#nav a").all()] == VIEWS
        await session.open("Tasks")
        # 20 tasks submitted through the API each appear within 2 s, without a reload
        ids = []
        for n in range(20):
            task_id = await _submit(admin, input={"n": n}, config={"simulate": {"latency_ms": 50}})
            ids.append(task_id)
            await page.wait_for_selector(f'tr[data-task="{task_id}"]', timeout=2_000)
        row = page.locator(f'tr[data-task="{ids[0]}"]')
        assert ids[0][:8] in await row.inner_text()
        for task_id in ids:  # ... and turn COMPLETED in place
            await page.wait_for_selector(f'tr[data-task="{task_id}"] .s-COMPLETED', timeout=15_000)
        # a task submitted to run in an hour appears live, waiting, with its due time
        later = await _submit(admin, delaySeconds=3600)
        due = page.locator(f'tr[data-task="{later}"] .st-due')
        await due.wait_for(timeout=2_000)
        stored = (await admin.data("Task", id=later))["task"]
        shown = await page.evaluate("(iso) => new Date(iso).toLocaleString()", stored["dueAt"])
        assert await due.inner_text() == f"due {shown}"
        # a task under a concurrency key says so in its detail
        keyed = await _submit(
            admin, queue="parked", concurrencyKey="customer-9", concurrencyLimit=2
        )
        await page.click(f'tr[data-task="{keyed}"]')
        limit = page.locator("#task-concurrency")
        await limit.wait_for(timeout=5_000)
        assert await limit.inner_text() == "concurrency key customer-9: at most 2 at once"
        assert session.foreign() == []
    finally:
        await _close(session)


async def test_cancel_and_retry_from_the_detail_panel(
    browser: Browser, server: str, settings: Settings, admin: GraphQLClient, worker: Proc
) -> None:
    # a task that runs for a while: cancelled while RUNNING
    running = await _submit(admin, config={"simulate": {"latency_ms": 30_000}})
    await wait_for(lambda: _is(admin, running, "RUNNING"), what="the task to run")
    failing = await _submit(
        admin, maxRetries=0, config={"simulate": {"fail_attempts": 1, "error": "fatal"}}
    )
    await wait_for(lambda: _failed(admin, failing), what="the task to fail")
    session = await _session(browser, server, settings, make_token(settings))
    page = session.page
    try:
        await session.open("Tasks")
        await page.click(f'tr[data-task="{running}"]')
        await page.wait_for_selector("#task-detail .s-RUNNING")
        await page.click('#task-detail button[data-action="Cancel"]')
        await wait_for(lambda: _is(admin, running, "CANCELLED"), what="cancelled via the API")
        # the panel follows it live
        await page.wait_for_selector("#task-detail .s-CANCELLED", timeout=10_000)
        await page.click(f'tr[data-task="{failing}"]')
        await page.click('#task-detail button[data-action="Retry"]')
        # the API shows it queued again after its failure (and it runs again)
        await wait_for(lambda: _requeued(admin, failing), what="retried")
    finally:
        await _close(session)


async def test_a_users_task_type_is_filtered_on_and_submitted_from_its_schema(
    browser: Browser,
    server: str,
    settings: Settings,
    admin: GraphQLClient,
    spawn_worker: Callable[..., Proc],
    tmp_path: Path,
) -> None:
    # given a worker serving the user's types (tests/test_own_task_types.py's package)
    folder = write_package(tmp_path / "project")
    worker = spawn_worker(
        "worker-console-types", "", 2, args=["--app", "mytasks", "--app-dir", str(folder)]
    )
    await types_served(admin, "images.resize")
    # stopped, the Overview says no worker serves its types
    worker.stop()
    await wait_for(
        lambda: types_served_now(admin, "images.resize"),
        until=lambda serving: serving is False,
        what="the type to be unserved",
    )
    session = await _session(browser, server, settings, make_token(settings))
    page = session.page
    try:
        await page.wait_for_selector("#types-unserved:not([hidden])")
        unserved = await page.locator("#types-unserved").inner_text()
        assert unserved == (
            "No worker serving task types asker, doomed, double, fan_out, fan_out_fails, flaky,"
            " huge, images.resize, patient, sleepy: their tasks wait."
        )
        worker = spawn_worker(
            "worker-console-types-2", "", 2, args=["--app", "mytasks", "--app-dir", str(folder)]
        )
        await types_served(admin, "images.resize")
        await session.open("Tasks")
        # the Type filter lists the registered types
        await page.wait_for_selector(
            'select[name="type"] option[value="images.resize"]', state="attached"
        )
        # the form is built from the type's schema: url (required), width (default 256)
        await page.click("#new-task summary")
        await page.select_option('select[name="new-type"]', "images.resize")
        form = page.locator("#new-task-form")
        assert await form.locator('label[data-field="url"]').inner_text() == "url *"
        assert await form.locator('input[name="width"]').input_value() == "256"
        # a value the schema refuses: the API names the field and the form shows it there
        await form.locator('input[name="url"]').fill("http://x/a.png")
        await form.locator('input[name="width"]').fill("")
        await form.locator('input[name="width"]').fill("1.5")
        await form.locator('button[type="submit"]').click()
        refused = "images.resize: input.width must be integer"
        await page.wait_for_selector(f'label[data-field="width"] .field-error:text("{refused}")')
        await _shot(session, "tasks-submit")
        # a valid one is submitted, appears in the list and completes
        await form.locator('input[name="width"]').fill("64")
        await form.locator('button[type="submit"]').click()
        await page.wait_for_selector("#task-detail .s-COMPLETED", timeout=15_000)
        listing = (await admin.data("Tasks", first=5))["tasks"]["edges"]
        ids = [e["node"]["id"] for e in listing if e["node"]["taskType"] == "images.resize"]
        assert len(ids) == 1, "only the valid submission was stored"
        task = (await admin.data("Task", id=ids[0]))["task"]
        assert task["input"] == {"url": "http://x/a.png", "width": 64}
        # a handler's child tasks show under their parent, each a link to its own panel
        parent = await submit(admin, taskType="fan_out", input={"numbers": [1, 2]})
        parent_id = parent["task"]["id"]
        done = await wait_for_status(admin, parent_id, {"COMPLETED"})
        await session.open("Workflows")
        await session.open("Tasks")
        await page.click(f'tr[data-task="{parent_id}"]')
        children = page.locator("#task-children a")
        await children.first.wait_for()
        assert [await a.get_attribute("data-related") for a in await children.all()] == [
            c["id"] for c in done["children"]
        ]
        await children.first.click()
        await page.wait_for_selector(f'#task-detail a[data-related="{parent_id}"]')
        assert session.foreign() == []
    finally:
        await _close(session)


async def test_schedules_run_now_and_an_approval_is_given_from_the_dag(
    browser: Browser, server: str, settings: Settings, admin: GraphQLClient, worker: Proc
) -> None:
    created = await admin.data(
        "CreateSchedule",
        input={"name": "nightly", "cron": "0 3 * * *", "taskType": "echo", "input": {"a": 1}},
    )
    schedule_id = created["createSchedule"]["schedule"]["id"]
    step = {"taskType": "echo", "queue": "default", "config": {"simulate": {"latency_ms": 0}}}
    flow = await admin.data(
        "CreateWorkflow",
        input={
            "name": "needs a yes",
            "steps": [
                {"stepId": "ok", "kind": "APPROVAL"},
                {"stepId": "go", "dependencies": ["ok"], **step},
            ],
        },
    )
    workflow_id = flow["createWorkflow"]["workflow"]["id"]
    session = await _session(browser, server, settings, make_token(settings))
    session.answer_dialogs("fine by me")
    page = session.page
    try:
        await session.open("Schedules")
        row = page.locator(f'tr[data-schedule="{schedule_id}"]')
        assert "0 3 * * * UTC" in await row.inner_text()
        await row.locator('button[data-action="Run now"]').click()
        await page.wait_for_selector(f'tr[data-schedule="{schedule_id}"] .last-run:text("STARTED")')
        # a bad cron from the form: the API's refusal names the field
        await page.click("#new-schedule summary")
        await page.fill('input[name="schedule-name"]', "broken")
        await page.fill('input[name="schedule-cron"]', "61 * * * *")
        await page.click('#new-schedule button[type="submit"]')
        await page.wait_for_selector('#new-schedule .error:text("cron: invalid cron expression")')
        # the workflow's waiting step is approved from its DAG
        await session.open("Workflows")
        await page.click(f'tr[data-workflow="{workflow_id}"]')
        await page.click('button[data-action="Approve"]')
        await wait_for(
            lambda: admin.data("Workflow", id=workflow_id),
            until=lambda d: d["workflow"]["status"] == "COMPLETED",
            what="the approved workflow to complete",
        )
        done = (await admin.data("Workflow", id=workflow_id))["workflow"]
        ok = next(s for s in done["steps"] if s["stepId"] == "ok")
        assert (ok["decidedBy"], ok["decisionNote"]) == ("test", "fine by me")
        assert session.foreign() == []
    finally:
        await _close(session)


async def types_served_now(admin: GraphQLClient, name: str) -> bool:
    types = (await admin.data("TaskTypes"))["taskTypes"]
    return bool(next(t for t in types if t["name"] == name)["serving"])


async def _failed(admin: GraphQLClient, task_id: str) -> bool:
    return await _status(admin, task_id) == "FAILED"


async def _requeued(admin: GraphQLClient, task_id: str) -> bool:
    """The task went back to QUEUED after it had FAILED."""
    body = await admin.query(
        "query($id: UUID!) { task(id: $id) { transitions { toStatus } } }", id=task_id
    )
    steps = [t["toStatus"] for t in body["data"]["task"]["transitions"]]
    return "FAILED" in steps and "QUEUED" in steps[steps.index("FAILED") :]


async def _is(admin: GraphQLClient, task_id: str, status: str) -> bool:
    return await _status(admin, task_id) == status


async def test_alert_acknowledged_and_resolved_with_notes(
    browser: Browser, server: str, settings: Settings, admin: GraphQLClient, engine: Any
) -> None:
    alert_id = await insert_alert(engine, agent="console-agent")
    session = await _session(browser, server, settings, make_token(settings))
    session.answer_dialogs("checked by the console")
    page = session.page
    try:
        await session.open("Alerts")
        await page.click(f'tr[data-alert="{alert_id}"] button[data-action="Acknowledge"]')
        await page.wait_for_selector(f'tr[data-alert="{alert_id}"] .s-ACKNOWLEDGED')
        await page.click(f'tr[data-alert="{alert_id}"] button[data-action="Resolve"]')
        await page.wait_for_selector(f'tr[data-alert="{alert_id}"] .s-RESOLVED')
    finally:
        await _close(session)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, acknowledge_notes, resolution FROM alerts WHERE id = :id"),
                {"id": alert_id},
            )
        ).one()
    assert tuple(row) == ("resolved", "checked by the console", "checked by the console")


async def test_a_dlq_entry_requeued_and_a_batch_flushed(
    browser: Browser,
    server: str,
    settings: Settings,
    admin: GraphQLClient,
    engine: Any,
    worker: Proc,
) -> None:
    dead = await _submit(
        admin, maxRetries=0, config={"simulate": {"fail_attempts": 1, "error": "fatal"}}
    )
    await wait_for(lambda: _failed(admin, dead), what="a dead letter")
    await insert_batch(engine, "console-batch")
    session = await _session(browser, server, settings, make_token(settings))
    page = session.page
    try:
        await session.open("DLQ")
        await page.click('section[data-dlq="dlq:llm"] button[data-action="Requeue one"]')
        # requeued: the API shows it queued again after its failure
        await wait_for(lambda: _requeued(admin, dead), what="the requeued task")
        await session.open("Pipeline")
        await page.click('tr[data-batch="console-batch"] button[data-action="Flush"]')
        await page.wait_for_selector('tr[data-batch="console-batch"]', state="detached")
    finally:
        await _close(session)
    batch = (await admin.data("ActiveBatches", cameraId="yard"))["activeBatches"]
    assert "console-batch" not in [b["batchId"] for b in batch]


async def test_a_viewer_sees_no_action_and_a_tenant_none_of_another_tenants_rows(
    browser: Browser, server: str, settings: Settings, admin: GraphQLClient, engine: Any
) -> None:
    other = GraphQLClient(server, make_token(settings, "tenant_admin", "tenant-b"))
    try:
        theirs = await _submit(other, queue="parked")
    finally:
        await other.aclose()
    mine_client = GraphQLClient(server, make_token(settings, "tenant_admin", "tenant-a"))
    try:
        mine = await _submit(mine_client, queue="parked")
    finally:
        await mine_client.aclose()
    await insert_alert(engine, agent="viewer-agent")
    viewer = await _session(browser, server, settings, make_token(settings, "viewer"))
    try:
        for view in ("Tasks", "Alerts", "DLQ", "Agents", "Jobs", "Workflows", "Prompts"):
            await viewer.open(view)
            assert await viewer.page.locator("button[data-action]").count() == 0, view
        await viewer.open("Tasks")
        await viewer.page.click(f'tr[data-task="{mine}"]')
        await viewer.page.wait_for_selector("#task-detail h3")
        assert await viewer.page.locator("#task-detail button").count() == 0
    finally:
        await _close(viewer)
    tenant = await _session(
        browser, server, settings, make_token(settings, "tenant_admin", "tenant-a")
    )
    try:
        await tenant.open("Tasks")
        await tenant.page.wait_for_selector(f'tr[data-task="{mine}"]')
        assert await tenant.page.locator(f'tr[data-task="{theirs}"]').count() == 0
        assert theirs[:8] not in await tenant.page.locator("main").inner_text()
        # installation-wide views say so instead of failing
        await tenant.open("DLQ")
        assert "tenant-scoped" in await tenant.page.locator("main").inner_text()
    finally:
        await _close(tenant)


# every page records what its policy refused (the policy itself: app/edge/headers.py)
CSP_WATCH = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.cspViolations.push(e.effectiveDirective + " " + e.blockedURI);
});
"""


async def test_no_request_leaves_the_origin_and_graphiql_works_offline(
    browser: Browser, server: str, settings: Settings
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    own = urlsplit(server).netloc
    blocked: list[str] = []

    async def offline(route: Any) -> None:
        if urlsplit(route.request.url).netloc != own:
            blocked.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    await context.route("**/*", offline)
    await context.add_init_script(CSP_WATCH)
    page = await context.new_page()
    try:
        # every console view, with the network to other origins cut
        await page.goto(sign_in_link(server, settings, make_token(settings)))
        await page.wait_for_selector('main[data-ready="overview"]', timeout=15_000)
        for view in VIEWS:
            await page.get_by_role("link", name=view, exact=True).click()
            await page.wait_for_selector(f'main[data-ready="{view.lower()}"]', timeout=10_000)
        violations = await page.evaluate("window.cspViolations")
        # GraphiQL renders its editor and runs a query, offline
        await page.goto(f"{server}/graphql")
        await page.wait_for_selector(".graphiql-container .graphiql-query-editor", timeout=20_000)
        await page.click(".graphiql-execute-button")
        result = page.locator(".graphiql-response")
        await result.filter(has_text="totalPending").wait_for(timeout=15_000)
        assert blocked == []
        # ... and neither page does anything its content security policy forbids
        assert violations + await page.evaluate("window.cspViolations") == []
    finally:
        await context.close()


async def _event_with_frames(engine: Any, settings: Settings) -> None:
    """A security event whose batch holds two detections with frames in the camera folder."""
    from PIL import Image, ImageDraw

    folder = settings.cameras_folder / "yard"
    folder.mkdir(parents=True, exist_ok=True)
    for n, colour in enumerate(((40, 90, 160), (160, 90, 40))):
        frame = folder / f"shot-{n}.jpg"
        im = Image.new("RGB", (320, 240), colour)
        ImageDraw.Draw(im).rectangle((100, 60, 200, 200), outline=(255, 255, 255), width=4)
        im.save(frame, format="JPEG")
        await insert_detection(engine, str(frame), batch_id="shot-batch")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO security_events (batch_id, camera_id, analysis_task_id, risk_score,"
                " risk_level, summary, reasoning, detection_count, input_tokens, output_tokens,"
                " started_at, ended_at, created_at) VALUES ('shot-batch', 'yard',"
                " gen_random_uuid(), 72, 'high', 'a person at the gate after hours', 'r', 2,"
                " 0, 0, now(), now(), now())"
            )
        )


def _step(step_id: str, *deps: str) -> dict[str, Any]:
    return {
        "stepId": step_id,
        "taskType": "echo",
        "dependencies": list(deps),
        "config": {"value": step_id, "simulate": {"latency_ms": 50}},
    }


async def test_screenshots_of_every_view(
    browser: Browser,
    server: str,
    settings: Settings,
    admin: GraphQLClient,
    engine: Any,
    worker: Proc,
) -> None:
    for n in range(5):
        await _submit(admin, queue="parked", input={"n": n})
    await insert_alert(engine, agent="shot-agent", message="error rate above 5 %")
    await _event_with_frames(engine, settings)
    steps = [
        _step("fetch"),
        _step("clean", "fetch"),
        _step("embed", "clean"),
        _step("summarise", "clean"),
        _step("publish", "embed", "summarise"),
    ]
    created = await admin.data("CreateWorkflow", input={"name": "ingest", "steps": steps})
    workflow = created["createWorkflow"]["workflow"]["id"]
    for name, cron, zone in (
        ("nightly report", "30 2 * * *", "Europe/Berlin"),
        ("hourly sync", "0 * * * *", "UTC"),
    ):
        await admin.data(
            "CreateSchedule",
            input={"name": name, "cron": cron, "timezone": zone, "taskType": "echo"},
        )
    session = await _session(browser, server, settings, make_token(settings))
    page = session.page
    try:
        for view in VIEWS:
            await session.open(view)
            if view == "Tasks":
                await page.locator("tr[data-task]").first.click()
                await page.wait_for_selector("#task-detail .timeline")
            if view == "Workflows":
                await page.click(f'tr[data-workflow="{workflow}"]')
                await page.wait_for_selector(".dag svg g[data-step]")
            if view == "Pipeline":  # the frames behind an event, as thumbnails
                await page.wait_for_selector("#events img.thumb")
            if view == "Prompts":
                await page.locator("tr[data-model]").first.click()
                await page.wait_for_selector("#prompt-panel .diff")
            await _shot(session, view.lower())
    finally:
        await _close(session)
    narrow = await _session(browser, server, settings, make_token(settings), viewport=(390, 844))
    try:
        await narrow.open("Tasks")
        await _shot(narrow, "tasks-390")
    finally:
        await _close(narrow)
    # every view has its picture (other tests add more, e.g. tasks-submit)
    assert {p.stem for p in SHOTS.glob("*.png")} >= {v.lower() for v in VIEWS} | {"tasks-390"}
