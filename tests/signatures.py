"""Webhook signatures checked the way the docs tell a receiver to (docs/concepts/lifecycle.md,
docs/concepts/monitoring.md), independently of opsgraph's own code: HMAC-SHA256 with the
secret over `<X-Opsgraph-Timestamp>.<body>`, sent as `X-Opsgraph-Signature: sha256=<hex>`,
with a timestamp of now."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping


def signed_by(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """`headers` as a receiver gets them (any case)."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower["x-opsgraph-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(lower["x-opsgraph-signature"], "sha256=" + mac.hexdigest())
