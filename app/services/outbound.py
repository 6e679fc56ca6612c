"""Guard for URLs opsgraph calls on a user's behalf (webhooks): no loopback, private,
link-local, multicast or reserved addresses (SSRF). Checked when a URL is given and again
after DNS resolution at delivery, which then connects to the very address that was checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from app.services.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class RefusedURL(Exception):
    """A URL opsgraph will not call; the message says why (for logs and delivery records)."""


def blocked(ip: IPAddress) -> bool:
    """True for every address that is not plainly a public unicast one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and blocked(embedded):
            return True
        if ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_private
    )


def _literal(host: str) -> IPAddress | None:
    """The address a host names literally, including the legacy IPv4 spellings that
    resolvers accept (`2130706433`, `0x7f.1`, `127.1`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, *, allow_private: bool, field: str = "webhookUrl") -> SplitResult:
    """Refuse, as bad input, a URL that is not http(s) or names a forbidden address."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_URL_LENGTH} characters", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a valid URL: {exc}", field=field) from exc
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"{field} must be an http(s) URL", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{field} must not carry credentials", field=field)
    if port == 0:
        raise InvalidInput(f"{field} has an invalid port", field=field)
    if allow_private:
        return parts
    ip = _literal(host)
    if ip is not None and blocked(ip):
        raise InvalidInput(
            f"{field} points at a private, loopback or reserved address ({ip}); "
            "set OPSGRAPH_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for local receivers",
            field=field,
        )
    if host.rstrip(".").lower() == "localhost" or host.rstrip(".").lower().endswith(".localhost"):
        raise InvalidInput(f"{field} points at localhost", field=field)
    return parts


@dataclass(frozen=True)
class Target:
    """Where to connect: `url` names the checked address; `host` goes in the Host header and
    TLS server name, so certificates are still verified against the name."""

    url: str
    host: str
    server_name: str
    address: str


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and refuse it when any of its addresses is forbidden (a name
    with one public and one private record could be steered to the private one)."""
    try:
        parts = check_url(url, allow_private=allow_private)
    except InvalidInput as exc:
        raise RefusedURL(exc.message) from exc
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RefusedURL(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise RefusedURL(f"{host} has no addresses")
    if not allow_private:
        bad = [a for a in addresses if blocked(a)]
        if bad:
            raise RefusedURL(f"{host} resolves to a forbidden address ({bad[0]})")
    chosen = addresses[0]
    netloc = f"[{chosen}]:{port}" if chosen.version == 6 else f"{chosen}:{port}"
    default_port = (parts.scheme == "https" and port == 443) or (
        parts.scheme == "http" and port == 80
    )
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    return Target(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host=host_header,
        server_name=host,
        address=str(chosen),
    )
