"""Running opsgraph's processes: the API (uvicorn), a worker, the migrations, the SDL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

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
    from workers.loading import load
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
    # before anything connects: a module that fails to import stops the worker here
    own = load(args.app, app_dir=args.app_dir)
    if own:
        logging.getLogger("opsgraph").info(
            "task types loaded: %s", ", ".join(f"{d.name} ({d.queue})" for d in own)
        )
    run_loop(
        run_worker(
            settings, queues=queues, concurrency=args.concurrency or settings.worker_concurrency
        )
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.cli.migrate import upgrade

    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("set OPSGRAPH_DATABASE_URL")
    upgrade(settings.database_url, args.revision)
    print(f"migrated to {args.revision}")


def cmd_schema(args: argparse.Namespace) -> None:
    from app.gql.schema import build_schema

    sys.stdout.write(build_schema(Settings(introspection=True)).as_str() + "\n")
