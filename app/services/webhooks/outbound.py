"""Guard for URLs opsgraph calls (webhooks): no loopback, private, link-local, multicast or
reserved addresses (SSRF). Checked when a URL is given and again after DNS resolution at
delivery, which then connects to the very address that was checked. Targets differ by purpose:
URLs users give (task, workflow and subscription webhooks) are public-only; the alert channels
an operator configures may also reach the hosts and networks of their own allow-list."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from app.kernel.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2048
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllowList:
    """Host names and networks (CIDR) an operator lets its alert channels reach even when
    they are not public. A name listed here may resolve to any address."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip()
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip(".").lower())
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, host: str, ip: IPAddress) -> bool:
        if host.rstrip(".").lower() in self.hosts:
            return True
        return any(ip.version == n.version and ip in n for n in self.networks)


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


async def resolve(url: str, *, allow_private: bool, allow_list: AllowList | None = None) -> Target:
    """Resolve the URL's host and refuse it when any of its addresses is forbidden (a name
    with one public and one private record could be steered to the private one). The refusal
    says "not a public address" and never which address (the delivery record is shown to the
    URL's owner, and an internal DNS answer is not theirs to read); the log has it."""
    try:
        # the URL's form here; its addresses below, for literals and names alike
        parts = check_url(url, allow_private=True)
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
            raise RefusedURL(f"refused: cannot resolve {host}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise RefusedURL(f"{host} has no addresses")
    if not allow_private:
        bad = [
            a for a in addresses if blocked(a) and not (allow_list and allow_list.permits(host, a))
        ]
        if bad:
            log.warning("outbound call to %s refused: it resolves to %s", host, bad[0])
            raise RefusedURL("refused: not a public address")
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
