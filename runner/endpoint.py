"""The one rule for an API base: the key travels over https, or stays on this machine."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def endpoint_problem(url: str) -> str | None:
    """Why this API base cannot receive the key, or None: https, or http to loopback only."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL; write it like https://api.octopush.com/v1/public"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host and is_loopback(host):
        return None
    if parts.scheme == "http" and host:
        return (
            "sends the API key over plain http; use https:// (plain http only for "
            "127.0.0.1, ::1 or localhost)"
        )
    return "must be an https:// URL, like https://api.octopush.com/v1/public"


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
