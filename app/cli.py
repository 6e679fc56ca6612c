"""The `opsgraph` command: serve, worker, dev, migrate, token, apikey, agent-sim, schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from app import agent_sim
from app.auth import ROLES, check_credential, issue_token
from app.config import Settings, get_settings

T = TypeVar("T")


def _require_stores(settings: Settings) -> None:
    missing = [
        n
        for n, v in (
            ("OPSGRAPH_DATABASE_URL", settings.database_url),
            ("OPSGRAPH_REDIS_URL", settings.redis_url),
        )
        if not v
    ]
    if missing:
        raise SystemExit(f"set {' and '.join(missing)} (or use `opsgraph dev`)")
    problems = settings.startup_problems()
    if problems:
        raise SystemExit("opsgraph cannot start:\n  " + "\n  ".join(problems))


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = get_settings()
    _require_stores(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        ws="websockets-sansio",
        ws_per_message_deflate=settings.ws_per_message_deflate,
        proxy_headers=True,
    )


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine on uvloop when it is installed (it comes with
    uvicorn[standard], which the API already runs on): ~10 % more worker throughput."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


def cmd_worker(args: argparse.Namespace) -> None:
    from workers.main import run_worker

    settings = get_settings()
    _require_stores(settings)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level.lower() != "debug":
        # arq logs every job start and end at INFO; our own log lines say what matters.
        logging.getLogger("arq").setLevel(logging.WARNING)
    queues = (
        [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else settings.queues
    )
    if args.watch:
        settings = settings.model_copy(update={"watch": True})
    run_loop(
        run_worker(
            settings, queues=queues, concurrency=args.concurrency or settings.worker_concurrency
        )
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.migrate import upgrade

    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("set OPSGRAPH_DATABASE_URL")
    upgrade(settings.database_url, args.revision)
    print(f"migrated to {args.revision}")


def _secret_file(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _dev_jwt_secret(settings: Settings) -> str:
    return settings.jwt_secret or _secret_file(settings.data_dir, "jwt_secret")


def cmd_token(args: argparse.Namespace) -> None:
    settings = get_settings()
    if args.data_dir:
        settings = settings.model_copy(update={"data_dir": Path(args.data_dir)})
    secret = settings.jwt_secret or (
        _dev_jwt_secret(settings) if (settings.data_dir / "jwt_secret").exists() else ""
    )
    if not secret:
        raise SystemExit("set OPSGRAPH_JWT_SECRET (or run `opsgraph dev` once)")
    settings = settings.model_copy(update={"jwt_secret": secret})
    _say_scope(args.role, args.tenant)
    print(issue_token(settings, role=args.role, tenant_id=args.tenant, ttl=args.ttl))


def _say_scope(role: str, tenant: str | None) -> None:
    """What a credential naming a tenant may do, said where it is made (stderr, so the printed
    credential stays alone on stdout)."""
    try:
        note = check_credential(role, tenant)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if note:
        print(note, file=sys.stderr)


def cmd_apikey(args: argparse.Namespace) -> None:
    from app.db.base import make_engine, make_sessionmaker
    from app.services.api_keys import create_api_key, revoke_api_keys

    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("set OPSGRAPH_DATABASE_URL")
    if args.action == "create":
        _say_scope(args.role, args.tenant)

    async def run() -> str:
        engine = make_engine(settings.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                if args.action == "revoke":
                    count = await revoke_api_keys(session=session, name=args.name)
                    return f"revoked {count} key(s) named {args.name!r}"
                _, plaintext = await create_api_key(
                    session=session, name=args.name, role=args.role, tenant_id=args.tenant
                )
        finally:
            await engine.dispose()
        return plaintext

    print(asyncio.run(run()))


def cmd_agent_sim(args: argparse.Namespace) -> None:
    if args.api_key:
        headers = {"X-API-Key": args.api_key}
    elif args.token:
        headers = {"Authorization": f"Bearer {args.token}"}
    else:
        raise SystemExit("give --token (opsgraph token --role ai_admin) or --api-key")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    opts = agent_sim.SimOptions(
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
        asyncio.run(agent_sim.run(opts))


def cmd_schema(args: argparse.Namespace) -> None:
    from app.gql.schema import build_schema

    sys.stdout.write(build_schema(Settings(introspection=True)).as_str() + "\n")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            raise SystemExit("opsgraph dev: a process exited during start-up (see above)")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"opsgraph dev: the API did not become ready at {url}")


def _console_code(redis_url: str, token: str, ttl_seconds: float) -> str:
    """Written straight to Redis, which every API process reads: nothing to call, and the
    API needs no way to mint credentials."""
    import redis

    from app.console import codes

    client = redis.Redis.from_url(redis_url)
    try:
        return codes.mint(client, token, ttl_seconds)
    finally:
        client.close()


def cmd_dev(args: argparse.Namespace) -> None:
    from app.embedded import start_postgres, start_redis
    from app.migrate import upgrade

    data_dir = Path(args.data_dir).resolve()
    base = get_settings().model_copy(update={"data_dir": data_dir})
    stops: list[Callable[[], None]] = []
    children: list[subprocess.Popen[bytes]] = []

    def shutdown(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        for stop in reversed(stops):
            stop()

    # Explicit handlers: a shell may start us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        db_url = base.database_url
        if not db_url:
            pg = start_postgres(data_dir)
            stops.append(pg.stop)
            db_url = pg.url
        redis_url = base.redis_url
        if not redis_url:
            rd = start_redis(data_dir)
            stops.append(rd.stop)
            redis_url = rd.url
        upgrade(db_url)
        env = {
            **os.environ,
            "OPSGRAPH_DATABASE_URL": db_url,
            "OPSGRAPH_REDIS_URL": redis_url,
            "OPSGRAPH_JWT_SECRET": _dev_jwt_secret(base),
            "OPSGRAPH_WEBHOOK_SECRET": base.webhook_secret
            or _secret_file(data_dir, "webhook_secret"),
            "OPSGRAPH_DEV": os.environ.get("OPSGRAPH_DEV", "1"),
            "OPSGRAPH_DATA_DIR": str(data_dir),
        }
        exe = [sys.executable, "-m", "app.cli"]
        children.append(
            subprocess.Popen(
                [*exe, "serve", "--host", args.host, "--port", str(args.port)], env=env
            )
        )
        cameras = base.cameras_folder.resolve()
        cameras.mkdir(parents=True, exist_ok=True)
        env["OPSGRAPH_CAMERA_ROOT"] = str(cameras)
        children.append(subprocess.Popen([*exe, "worker", "--watch"], env=env))
        url = f"http://{args.host}:{args.port}"
        _wait_ready(url, children)
        settings = base.model_copy(update={"jwt_secret": env["OPSGRAPH_JWT_SECRET"]})
        token = issue_token(settings, role="platform_admin", ttl=30 * 86_400, subject="dev")
        # the console link carries a one-time code, never the token: a URL lands in the
        # browser's history (app/console/codes.py)
        code = _console_code(redis_url, token, base.console_code_ttl_seconds)
        minutes = f"{base.console_code_ttl_seconds / 60:g}"
        provider = (
            f"OpenAI-compatible at {base.llm_base_url}"
            if base.llm_base_url
            else "SIMULATED (no OPSGRAPH_LLM_BASE_URL set)"
        )
        print(
            f"\nopsgraph dev is up\n"
            f"  console     {url}/console#code={code}  (one-time link, {minutes} min)\n"
            f"  GraphQL     {url}/graphql  (GraphiQL in a browser; ws for subscriptions)\n"
            f"  REST        {url}/api/v1   (OpenAPI at {url}/openapi.json)\n"
            f"  LLM         {provider}\n"
            f"  cameras     {cameras}/<camera_id>/  (drop images here; watched)\n"
            f"  data        {data_dir}\n"
            f"  admin token {token}\n"
            f"\nCtrl-C stops everything.\n",
            flush=True,
        )
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        print("a child process exited; stopping", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        shutdown()


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
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("dev", help="embedded PostgreSQL + Redis, API and a worker")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--data-dir", default=str(get_settings().data_dir))
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


if __name__ == "__main__":
    main()
