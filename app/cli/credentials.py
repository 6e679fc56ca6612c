"""Credentials from the command line: signed tokens and API keys (and the dev stack's secrets)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path

from app.auth.principals import check_credential
from app.auth.tokens import issue_token
from app.config import Settings, get_settings


def secret_file(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def dev_jwt_secret(settings: Settings) -> str:
    return settings.jwt_secret or secret_file(settings.data_dir, "jwt_secret")


def cmd_token(args: argparse.Namespace) -> None:
    settings = get_settings()
    if args.data_dir:
        settings = settings.model_copy(update={"data_dir": Path(args.data_dir)})
    secret = settings.jwt_secret or (
        dev_jwt_secret(settings) if (settings.data_dir / "jwt_secret").exists() else ""
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
    from app.auth.api_keys import create_api_key, revoke_api_keys
    from app.db.base import make_engine, make_sessionmaker

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
