"""Store backends built from settings."""

from __future__ import annotations

from flops_manager.settings import Settings
from flops_manager.store.memory import MemoryStore
from flops_manager.store.mongo import MongoStore


def mongo(settings: Settings) -> MongoStore:
    """A MongoDB-compatible server (MongoDB, or the embedded SecantusDB) at ``settings.mongo_uri``."""
    return MongoStore.connect(settings.mongo_uri.get_secret_value(), settings.mongo_db)


def memory(settings: Settings) -> MemoryStore:
    """Nothing persisted: a manager restart forgets every project (throwaway runs)."""
    return MemoryStore()
