"""Schedules (issue 32): each tick runs at most once whatever the number of workers, missed
ticks run as the catch-up policy says, overlap as the policy says, DST as the library computes
it, bad input refused naming the field, tenants kept apart. The schedules' workers read a clock
of their own (OPSGRAPH_MONITORING_CLOCK_FILE), moved to the ticks: no test waits a minute.

The schedules fire only in the first minutes of 2027-01-01 (`* 0 1 1 *`), weeks away for the
session's own workers, which read the wall clock: only the test's workers ever fire them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.kernel.errors import InvalidInput
from app.services.schedules import commands, cron
from tests.client import GraphQLClient, live
from tests.processes import Proc
from tests.waiting import wait_for

EVERY_MINUTE_ON_NEW_YEAR = "* 0 1 1 *"
NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


class Clock:
    """A clock file the test's workers read: set it to a moment of the future."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("0")

    def at(self, moment: datetime) -> None:
        offset = (moment - datetime.now(UTC)).total_seconds()
        self.path.write_text(f"{offset:.3f}")


@pytest.fixture
def clock(tmp_path: Path) -> Clock:
    return Clock(tmp_path / "clock")


@pytest.fixture
def schedule_worker(spawn_worker: Callable[..., Proc], clock: Clock) -> Callable[[str], Proc]:
    def start(name: str) -> Proc:
        return spawn_worker(
            name,
            "parked-never",
            2,
            OPSGRAPH_MONITORING_CLOCK_FILE=str(clock.path),
            OPSGRAPH_SCHEDULE_POLL_SECONDS="0.1",
        )

    return start


def schedule_input(name: str, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cron": EVERY_MINUTE_ON_NEW_YEAR,
        "taskType": "echo",
        "input": {"from": name},
        "overlap": "ALLOW",
        **more,
    }


async def create(admin: GraphQLClient, **item: Any) -> dict[str, Any]:
    payload = (await admin.data("CreateSchedule", input=item))["createSchedule"]
    assert payload["errors"] == [], payload
    schedule: dict[str, Any] = payload["schedule"]
    return schedule


async def runs(admin: GraphQLClient, schedule_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await admin.data("Schedule", id=schedule_id))["schedule"]["runs"]
    return found


def minute(n: int) -> datetime:
    return NEW_YEAR + timedelta(minutes=n)


async def test_three_ticks_under_two_workers_run_three_times(
    admin: GraphQLClient, schedule_worker: Callable[[str], Proc], clock: Clock
) -> None:
    schedule = await create(admin, **schedule_input("minutely"))
    assert schedule["nextFireAt"] == minute(0).isoformat()
    assert schedule["nextFireTimes"] == [minute(n).isoformat() for n in range(5)]
    clock.at(minute(0) - timedelta(seconds=5))
    schedule_worker("worker-sched-1")
    schedule_worker("worker-sched-2")
    for n in range(3):
        # the clock reaches tick n (both workers look every 0.1 s)
        clock.at(minute(n) + timedelta(seconds=1))
        await wait_for(
            lambda: runs(admin, schedule["id"]),
            until=lambda got, n=n: len(got) == n + 1,
            what=f"run {n + 1}",
        )
    clock.at(minute(2) + timedelta(seconds=30))  # both keep looking: nothing more fires
    done = await runs(admin, schedule["id"])
    assert [(r["fireTime"], r["outcome"], r["manual"]) for r in done] == [
        (minute(n).isoformat(), "STARTED", False) for n in (2, 1, 0)
    ]
    assert len({r["task"]["id"] for r in done}) == 3
    assert all(r["task"]["taskType"] == "echo" for r in done)


async def test_ticks_missed_while_no_worker_ran_follow_the_catch_up_policy(
    admin: GraphQLClient, schedule_worker: Callable[[str], Proc], clock: Clock
) -> None:
    ids = {
        policy: (await create(admin, **schedule_input(f"catch-{policy}", catchUp=policy)))["id"]
        for policy in ("NONE", "LATEST", "ALL")
    }
    # no worker ran while ticks 0 and 1 passed; one starts 30 s after tick 1
    clock.at(minute(1) + timedelta(seconds=30))
    schedule_worker("worker-sched-3")

    async def outcomes(policy: str) -> list[tuple[str, str]]:
        return [(r["fireTime"], r["outcome"]) for r in await runs(admin, ids[policy])]

    expected = {
        "NONE": [(minute(1).isoformat(), "MISSED"), (minute(0).isoformat(), "MISSED")],
        "LATEST": [(minute(1).isoformat(), "STARTED"), (minute(0).isoformat(), "MISSED")],
        "ALL": [(minute(1).isoformat(), "STARTED"), (minute(0).isoformat(), "STARTED")],
    }
    for policy, want in expected.items():
        await wait_for(
            lambda policy=policy: outcomes(policy),
            until=lambda got, want=want: got == want,
            what=f"{policy}'s fires",
        )
    for policy in ids:
        schedule = (await admin.data("Schedule", id=ids[policy]))["schedule"]
        assert schedule["nextFireAt"] == minute(2).isoformat()


async def test_a_fire_while_the_previous_run_is_unfinished_is_skipped(
    admin: GraphQLClient, schedule_worker: Callable[[str], Proc], clock: Clock
) -> None:
    schedule = await create(admin, **schedule_input("skipper"))
    # changed to create a workflow whose step waits on a queue no worker consumes: the first
    # run stays unfinished
    parked = {"name": "parked", "steps": [{"stepId": "a", "taskType": "echo", "queue": "parked"}]}
    changed = await admin.data(
        "UpdateSchedule",
        id=schedule["id"],
        input={**schedule_input("skipper", overlap="SKIP"), "taskType": None, "workflow": parked},
    )
    assert changed["updateSchedule"]["errors"] == []
    assert changed["updateSchedule"]["schedule"]["overlap"] == "SKIP"
    clock.at(minute(0) + timedelta(seconds=1))
    schedule_worker("worker-sched-4")
    await wait_for(
        lambda: runs(admin, schedule["id"]), until=lambda got: len(got) == 1, what="run 1"
    )
    clock.at(minute(1) + timedelta(seconds=1))
    done = await wait_for(
        lambda: runs(admin, schedule["id"]), until=lambda got: len(got) == 2, what="fire 2"
    )
    first = done[1]["workflow"]
    assert [r["outcome"] for r in done] == ["SKIPPED", "STARTED"], done
    assert first["status"] in ("PENDING", "RUNNING")
    assert done[0]["message"] == f"the previous run (workflow {first['id']}) is unfinished"


async def test_trigger_pause_resume_and_delete(admin: GraphQLClient) -> None:
    schedule = await create(admin, **schedule_input("manual"))
    triggered = (await admin.data("TriggerSchedule", id=schedule["id"]))["triggerSchedule"]
    assert triggered["errors"] == [] and triggered["run"]["manual"] is True
    assert triggered["run"]["outcome"] == "STARTED" and triggered["run"]["task"]["id"]
    paused = (await admin.data("PauseSchedule", id=schedule["id"]))["pauseSchedule"]
    assert paused["schedule"]["paused"] is True and paused["schedule"]["nextFireTimes"] == []
    resumed = (await admin.data("ResumeSchedule", id=schedule["id"]))["resumeSchedule"]
    assert resumed["schedule"] == {
        "id": schedule["id"],
        "paused": False,
        "nextFireAt": minute(0).isoformat(),
    }
    listed = (await admin.data("Schedules"))["schedules"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    deleted = (await admin.data("DeleteSchedule", id=schedule["id"]))["deleteSchedule"]
    assert deleted["errors"] == []
    assert (await admin.data("Schedule", id=schedule["id"]))["schedule"] is None
    # REST has the same, in OpenAPI
    rest = await admin.http.post(
        "/api/v1/schedules",
        json={
            "name": "rest",
            "cron": "0 3 * * *",
            "timezone": "Europe/Berlin",
            "task_type": "echo",
        },
    )
    assert rest.status_code == 201, rest.text
    body = rest.json()
    assert body["catch_up"] == "NONE" and body["overlap"] == "SKIP"
    assert (
        datetime.fromisoformat(body["next_fire_at"]).astimezone(ZoneInfo("Europe/Berlin")).hour == 3
    )
    run = await admin.http.post(f"/api/v1/schedules/{body['id']}/trigger")
    assert run.status_code == 200 and run.json()["outcome"] == "STARTED"
    detail = (await admin.http.get(f"/api/v1/schedules/{body['id']}")).json()
    assert [r["manual"] for r in detail["runs"]] == [True]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"taskType": "teleport"}, "taskType"),
        ({"taskType": "llm", "input": {"nothing": 1}}, "input"),
        ({"taskType": None}, "taskType"),
        ({"name": " "}, "name"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    admin: GraphQLClient, overrides: dict[str, Any], field: str
) -> None:
    body = await admin.execute("CreateSchedule", input={**schedule_input("bad"), **overrides})
    errors = body["data"]["createSchedule"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(field, "INVALID")]
    assert (await admin.data("Schedules"))["schedules"] == []


async def test_a_viewer_reads_and_a_tenant_sees_its_own(
    admin: GraphQLClient, token_for: Callable[..., str], server: str
) -> None:
    ours = await create(admin, **schedule_input("installation-wide"))
    async with GraphQLClient(server, token_for("tenant_admin", "tenant-a")) as a:
        mine = await create(a, **schedule_input("a's"))
        assert mine["tenantId"] == "tenant-a"
        assert [s["id"] for s in (await a.data("Schedules"))["schedules"]] == [mine["id"]]
        assert (await a.data("Schedule", id=ours["id"]))["schedule"] is None
        refused = await a.execute("PauseSchedule", id=ours["id"])
        assert [e["code"] for e in refused["data"]["pauseSchedule"]["errors"]] == ["NOT_FOUND"]
    async with GraphQLClient(server, token_for("viewer")) as viewer:
        assert len((await viewer.data("Schedules"))["schedules"]) == 2
        denied = await viewer.execute("CreateSchedule", input=schedule_input("no"))
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_daylight_saving_days_in_berlin() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # spring forward (29 March 2026): 02:30 does not exist; it fires once, at 03:00 CEST
    spring = cron.next_after("30 2 * * *", berlin, datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert [t.astimezone(berlin).isoformat() for t in spring] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    # fall back (25 October 2026): 02:30 happens twice; it fires once, at the first (CEST)
    fall = cron.next_after("30 2 * * *", berlin, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert [t.astimezone(berlin).isoformat() for t in fall] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    # and the least interval a deployment allows is held
    with pytest.raises(InvalidInput) as refused:
        cron.check("*/30 * * * *", berlin, datetime(2026, 1, 1, tzinfo=UTC), 3600)
    assert refused.value.field == "cron"


async def test_schedule_changes_are_seen_live(admin: GraphQLClient) -> None:
    schedule = await create(admin, **schedule_input("watched"))
    async with live(admin, "ScheduleChanged") as sub:
        await admin.data("TriggerSchedule", id=schedule["id"])
        seen = (await sub.next())["scheduleChanged"]
    assert seen["id"] == schedule["id"] and seen["name"] == "watched"


async def test_a_tick_is_claimed_once(engine: Any) -> None:
    """The row unique on (schedule, fire time) is what keeps a tick to one run."""
    async with AsyncSession(engine) as session, session.begin():
        schedule = await commands.create_schedule(
            session=session,
            spec=commands.ScheduleSpec(name="claimed", cron="0 0 1 1 *", task_type="echo"),
            rules=commands.ScheduleRules(),
            tenant_id=None,
        )
        first = await commands.claim(session, schedule.id, NEW_YEAR)
        again = await commands.claim(session, schedule.id, NEW_YEAR)
        other = await commands.claim(session, schedule.id, minute(1))
    assert first is not None and other is not None
    assert again is None
