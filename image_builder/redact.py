"""Keeps credentials out of messages: strips userinfo from repo URLs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """``url`` without its userinfo (``https://user:token@host/x`` -> ``https://host/x``).

    scp-like addresses (``git@host:path``) keep their user name: it is not a secret.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` and any userinfo of it replaced by the safe form."""
    clean = safe_url(url)
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
