"""`opsgraph agent-sim`: a small reference agent for demos and tests. Each simulated agent
heartbeats with plausible traffic (requests, errors, latency samples, tokens by model) and
obeys what the reply says: paused agents serve nothing, a new restart generation restarts
them (they report `starting` once), the replica count is echoed in their configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger("opsgraph.agent_sim")
MODELS = ("gemini-2.0-flash", "claude-haiku-4.5", "llama-4-scout")


@dataclass
class SimOptions:
    url: str
    headers: dict[str, str]
    count: int = 3
    prefix: str = "sim_agent"
    type: str = "simulated"
    interval: float = 5.0
    latency_ms: float = 200.0
    error_rate: float = 1.0  # percent
    beats: int = 0  # 0: forever
    tenant_id: str | None = None
    logs: bool = False
    seed: int | None = None


class SimAgent:
    def __init__(self, agent_id: str, opts: SimOptions, rng: random.Random) -> None:
        self.id, self.opts, self.rng = agent_id, opts, rng
        self.generation: int | None = None
        self.paused = False
        self.replicas = 1
        self.state = "starting"

    def beat(self) -> dict[str, Any]:
        o, rng = self.opts, self.rng
        requests = 0 if self.paused else rng.randint(10, 50) * self.replicas
        errors = sum(1 for _ in range(requests) if rng.random() * 100 < o.error_rate)
        latencies = [
            round(rng.lognormvariate(0, 0.35) * o.latency_ms, 1) for _ in range(min(requests, 10))
        ]
        model = MODELS[hash(self.id) % len(MODELS)]
        tin, tout = requests * rng.randint(200, 400), requests * rng.randint(50, 150)
        return {
            "name": f"Simulated agent {self.id}",
            "type": o.type,
            "version": "1.0.0",
            "tenant_id": o.tenant_id,
            "state": self.state,
            "configuration": {"model_primary": model, "replicas": self.replicas},
            "health": {"checks": [{"name": "model_connection", "status": "pass"}]},
            "dependencies": [{"service": model, "status": "healthy"}],
            "metrics": {
                "requests": requests,
                "errors": errors,
                "errors_by_type": {"timeout": errors} if errors else {},
                "latency_ms": latencies,
                "tokens": {
                    "input": tin,
                    "output": tout,
                    "by_model": {model: {"input": tin, "output": tout}} if requests else {},
                },
            },
        }

    def obey(self, reply: dict[str, Any]) -> None:
        wanted = reply.get("desired_state") or {}
        self.paused = wanted.get("state") == "paused"
        self.replicas = int(wanted.get("replicas", 1))
        generation = int(wanted.get("restart_generation", 0))
        restarted = self.generation is not None and generation != self.generation
        self.generation = generation
        self.state = "starting" if restarted else "running"
        if restarted:
            log.info("%s: restarting (generation %d)", self.id, generation)


async def run(opts: SimOptions) -> None:
    rng = random.Random(opts.seed)
    agents = [SimAgent(f"{opts.prefix}_{i + 1:03d}", opts, rng) for i in range(opts.count)]
    async with httpx.AsyncClient(base_url=opts.url, headers=opts.headers, timeout=10) as http:
        n = 0
        while opts.beats == 0 or n < opts.beats:
            n += 1
            for agent in agents:
                try:
                    r = await http.post(
                        f"/api/v1/monitoring/agents/{agent.id}/heartbeat", json=agent.beat()
                    )
                    if r.status_code != 200:
                        log.warning(
                            "%s: heartbeat answered %d: %s", agent.id, r.status_code, r.text
                        )
                        continue
                    agent.obey(r.json())
                    if opts.logs and not agent.paused:
                        await http.post(
                            "/api/v1/monitoring/logs",
                            json={"logs": [_log_line(agent, rng)]},
                        )
                except httpx.HTTPError as exc:
                    log.warning("%s: %s", agent.id, exc)
            await asyncio.sleep(opts.interval)


def _log_line(agent: SimAgent, rng: random.Random) -> dict[str, Any]:
    failed = rng.random() * 100 < agent.opts.error_rate * 5
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "error" if failed else "info",
        "agent_id": agent.id,
        "message": "request failed: upstream timeout" if failed else "request served",
        "context": {"replicas": agent.replicas, "error_code": "TIMEOUT" if failed else None},
    }


def cmd_agent_sim(args: argparse.Namespace) -> None:
    if args.api_key:
        headers = {"X-API-Key": args.api_key}
    elif args.token:
        headers = {"Authorization": f"Bearer {args.token}"}
    else:
        raise SystemExit("give --token (opsgraph token --role ai_admin) or --api-key")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    opts = SimOptions(
        url=args.url,
        headers=headers,
        count=args.count,
        prefix=args.prefix,
        type=args.type,
        interval=args.interval,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        beats=args.beats,
        tenant_id=args.tenant,
        logs=args.logs,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(opts))
