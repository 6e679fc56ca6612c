"""Each worker process reports itself as an AI agent of type `opsgraph_worker`, so a fresh
install shows a real fleet in the agent views. It reports; it does not obey controls (a worker
is stopped and scaled by its process manager)."""

from __future__ import annotations

import asyncio
import logging
import re

from app.edge.uow import unit_of_work
from app.services.agents import registry
from workers.context import WorkerState

log = logging.getLogger(__name__)


def agent_id_of(worker_name: str) -> str:
    return registry.WORKER_AGENT_PREFIX + re.sub(r"[^A-Za-z0-9_.:-]", "_", worker_name)[:100]


async def report_forever(state: WorkerState) -> None:
    agent_id = agent_id_of(state.name)
    last_completed = last_failed = 0
    first = True
    while True:
        beat = state.beat
        completed, failed = beat.completed, beat.failed
        new_failures = failed - last_failed
        latencies, tokens = state.usage.take()
        report = registry.Heartbeat(
            name=f"opsgraph worker {state.name}",
            type="opsgraph_worker",
            state="starting" if first else "running",
            configuration={
                "queues": beat.queues,
                "concurrency": beat.concurrency,
                "pid": beat.pid,
                "host": beat.host,
            },
            health_checks=[
                {"name": "utilization", "status": "pass", "value": f"{beat.utilization_pct}%"},
                {"name": "memory_mb", "status": "pass", "value": beat.memory_mb},
            ],
            metrics=registry.Metrics(
                requests=(completed - last_completed) + new_failures,
                errors=new_failures,
                errors_by_type={"task_failed": new_failures} if new_failures else {},
                latencies_ms=latencies,
                input_tokens=sum(t["input"] for t in tokens.values()),
                output_tokens=sum(t["output"] for t in tokens.values()),
                tokens_by_model=dict(tokens),
            ),
        )
        try:
            async with unit_of_work(state.sessionmaker, state.redis) as session:
                await registry.heartbeat(
                    session=session,
                    agent_id=agent_id,
                    beat=report,
                    rules=state.settings.agent_rules,
                    system=True,
                )
            last_completed, last_failed, first = completed, failed, False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store outage: the next report carries the counts
            log.debug("agent report failed: %s", exc)
            state.usage.restore(latencies, tokens)
        await asyncio.sleep(state.settings.agent_report_seconds)
