"""The `opsgraph` command: serve, worker, dev, migrate, token, apikey, agent-sim, schema."""

from __future__ import annotations

import argparse

from app.auth.principals import ROLES
from app.cli.agent_sim import cmd_agent_sim
from app.cli.credentials import cmd_apikey, cmd_token
from app.cli.dev import cmd_dev
from app.cli.run import cmd_migrate, cmd_schema, cmd_serve, cmd_worker
from app.config import get_settings


def _app_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module defining task types with opsgraph.task (repeatable); installed "
        "distributions' `opsgraph.tasks` entry points are loaded too",
    )
    p.add_argument(
        "--app-dir",
        default=".",
        help="folder to import --app modules from (default: the current folder)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="opsgraph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the API (uvicorn)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run an arq worker")
    p.add_argument("--queues", default="", help="comma-separated (default: settings.queues)")
    p.add_argument("--concurrency", type=int, default=0)
    p.add_argument(
        "--watch",
        action="store_true",
        help="also watch the camera folders (one watcher per folder runs at a time)",
    )
    p.add_argument("--log-level", default="info")
    _app_arguments(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("dev", help="embedded PostgreSQL + Redis, API and a worker")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--data-dir", default=str(get_settings().data_dir))
    _app_arguments(p)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("migrate", help="apply the alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help="print a signed JWT")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--tenant", default=None)
    p.add_argument("--ttl", type=int, default=None, help="seconds")
    p.add_argument("--data-dir", default=None, help="dev data folder holding the secret")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("apikey", help="manage API keys")
    apikey = p.add_subparsers(dest="action", required=True)
    c = apikey.add_parser("create", help="create a key and print it once")
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--tenant", default=None)
    c.add_argument("--name", default="cli")
    c.set_defaults(func=cmd_apikey)
    r = apikey.add_parser("revoke", help="revoke every key with this name")
    r.add_argument("--name", required=True)
    r.set_defaults(func=cmd_apikey)

    p = sub.add_parser("agent-sim", help="simulated AI agents heartbeating to an API")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the opsgraph API")
    p.add_argument("--token", default=None, help="bearer token (opsgraph token ...)")
    p.add_argument("--api-key", default=None, help="X-API-Key instead of a token")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--prefix", default="sim_agent", help="agent ids are <prefix>_001 ...")
    p.add_argument("--type", default="simulated")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between heartbeats")
    p.add_argument("--latency-ms", type=float, default=200.0, help="typical request latency")
    p.add_argument("--error-rate", type=float, default=1.0, help="percent of requests failing")
    p.add_argument("--beats", type=int, default=0, help="stop after this many (0: never)")
    p.add_argument("--tenant", default=None)
    p.add_argument("--logs", action="store_true", help="also send a log line per beat")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_agent_sim)

    p = sub.add_parser("schema", help="print the GraphQL SDL")
    p.set_defaults(func=cmd_schema)

    args = parser.parse_args(argv)
    args.func(args)
