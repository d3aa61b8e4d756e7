"""Taking credentials out of text before it is logged, stored or shown."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(://)[^/@\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", text)
