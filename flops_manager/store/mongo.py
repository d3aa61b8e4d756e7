"""The store on a MongoDB-compatible server over pymongo (MongoDB, or the embedded SecantusDB)."""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from flops_common.events import Event
from flops_common.stages import ProjectStatus
from flops_manager.projects.models import Project
from flops_manager.store.base import Store

_FINAL = [s.value for s in ProjectStatus if s.is_final]


class MongoStore(Store):
    """Every read and write of the manager's state in one database. Constructing it does no I/O."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._db = db

    @classmethod
    def connect(cls, uri: str, db_name: str) -> MongoStore:
        """A store on a server at ``uri`` (pymongo connects lazily, on the first operation)."""
        client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=False
        )
        return cls(client[db_name])

    def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent)."""
        self._db.events.create_index("event_id", unique=True)
        self._db.events.create_index([("project_id", ASCENDING), ("timestamp", ASCENDING)])
        self._db.projects.create_index([("customer_id", ASCENDING), ("created_at", ASCENDING)])
        self._db.projects.create_index("status")
        self._db.tokens.create_index("token_hash", unique=True)

    def ping(self) -> bool:
        """Whether the server answers."""
        try:
            self._db.command("ping")
            return True
        except Exception:
            return False

    def insert_project(self, project: Project) -> None:
        """Store a new project."""
        self._db.projects.insert_one(project.to_doc())

    def save_project(self, project: Project) -> None:
        """Replace a project's document with ``project``."""
        project.updated_at = time.time()
        self._db.projects.replace_one({"_id": project.id}, project.to_doc(), upsert=True)

    def get_project(self, project_id: str) -> Project | None:
        """One project, or None."""
        doc = self._db.projects.find_one({"_id": project_id})
        return Project.from_doc(doc) if doc else None

    def list_projects(self, customer_id: str | None = None, limit: int = 500) -> list[Project]:
        """Projects, newest first; only ``customer_id``'s when given."""
        query = {} if customer_id is None else {"customer_id": customer_id}
        docs = self._db.projects.find(query).sort("created_at", -1).limit(limit)
        return [Project.from_doc(d) for d in docs]

    def active_projects(self) -> list[Project]:
        """Projects that have not reached a final status."""
        return [Project.from_doc(d) for d in self._db.projects.find({"status": {"$nin": _FINAL}})]

    def serving_projects(self) -> list[Project]:
        """Ended projects whose inference service is recorded as starting or running."""
        query = {"status": {"$in": _FINAL}, "inference.state": {"$in": ["starting", "running"]}}
        return [Project.from_doc(d) for d in self._db.projects.find(query)]

    def delete_all(self) -> None:
        """Forget every project, event and mock record (admin reset)."""
        for name in ("projects", "events", "mocks"):
            self._db[name].delete_many({})

    def add_event(self, event: Event) -> bool:
        """Store an event once; False when it was stored before (redelivery)."""
        try:
            self._db.events.insert_one(event.model_dump(mode="json"))
            return True
        except DuplicateKeyError:
            return False

    def list_events(self, project_id: str, after: float = 0.0, limit: int = 5000) -> list[Event]:
        """A project's events in time order, those after ``after`` only."""
        docs = (
            self._db.events.find({"project_id": project_id, "timestamp": {"$gt": after}}, {"_id": 0})
            .sort("timestamp", ASCENDING)
            .limit(limit)
        )
        return [Event.model_validate(d) for d in docs]

    def add_token(self, token_hash: str, customer_id: str, admin: bool) -> None:
        """Store a token's hash and whom it belongs to."""
        self._db.tokens.update_one(
            {"token_hash": token_hash},
            {"$set": {"customer_id": customer_id, "admin": admin, "created_at": time.time()}},
            upsert=True,
        )

    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        """The owner of a token hash, or None."""
        return self._db.tokens.find_one({"token_hash": token_hash}, {"_id": 0})

    def add_mock(self, record: dict[str, Any]) -> None:
        """Remember a mock data provider run."""
        self._db.mocks.insert_one(dict(record))

    def list_mocks(self) -> list[dict[str, Any]]:
        """Every mock data provider run."""
        return list(self._db.mocks.find({}, {"_id": 0}))
