"""Keeps credentials out of logs, events, labels and messages: one place that knows URL userinfo."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(://)[^/@]*@")


def redact_url(text: str) -> str:
    """``text`` with the ``user:password`` part of every URL in it masked (``https://***@host/x``)."""
    return _USERINFO.sub(r"\1***@", text)


def strip_userinfo(url: str) -> str:
    """``url`` without its userinfo (``https://user:token@host/x`` -> ``https://host/x``).

    scp-like addresses (``git@host:path``) keep their user name: it is not a secret.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` in its safe form and any piece of its userinfo masked."""
    clean = strip_userinfo(url)
    if clean == url:
        return text
    text = text.replace(url, clean)
    userinfo = urlsplit(url).netloc.rsplit("@", 1)[0]
    if userinfo:
        text = text.replace(userinfo + "@", "").replace(userinfo, "***")
        for secret in userinfo.split(":"):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text
