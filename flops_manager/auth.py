"""Bearer tokens: stored hashed, each mapped to a customer; the first admin comes from settings."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pydantic import BaseModel

from flops_manager.settings import Settings
from flops_manager.store.base import Store


class Principal(BaseModel):
    """Who is calling."""

    customer_id: str
    admin: bool = False


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def authenticate(token: str, settings: Settings, store: Store) -> Principal | None:
    """The principal behind ``token``, or None."""
    if settings.admin_token is not None and hmac.compare_digest(
        token.encode(), settings.admin_token.get_secret_value().encode()
    ):
        return Principal(customer_id="admin", admin=True)
    record = store.find_token(hash_token(token))
    if record is None:
        return None
    return Principal(customer_id=record["customer_id"], admin=bool(record.get("admin")))


def issue_token(store: Store, customer_id: str, admin: bool = False) -> str:
    """Create a token for a customer; only its hash is kept."""
    token = new_token()
    store.add_token(hash_token(token), customer_id, admin)
    return token
