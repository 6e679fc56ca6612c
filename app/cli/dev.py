"""`opsgraph dev`: embedded PostgreSQL and Redis (unless configured), the migrations, an API and
a worker, and a one-time console link."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.auth.tokens import issue_token
from app.cli.credentials import dev_jwt_secret, secret_file
from app.config import get_settings


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
    from app.cli.migrate import upgrade
    from app.platform.embedded import start_postgres, start_redis

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
            "OPSGRAPH_JWT_SECRET": dev_jwt_secret(base),
            "OPSGRAPH_WEBHOOK_SECRET": base.webhook_secret
            or secret_file(data_dir, "webhook_secret"),
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
        apps = [a for app in args.app for a in ("--app", app)]
        app_dir = ["--app-dir", str(Path(args.app_dir).resolve())]
        children.append(subprocess.Popen([*exe, "worker", "--watch", *apps, *app_dir], env=env))
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
