"""How FL-actor images are named and labelled in an OCI registry (the ``oci`` registry and build plan).

    <registry>/flops/learner:<key digest>       learner image (no MLflow)
    <registry>/flops/aggregator:<key digest>    aggregator image (the learner's layers plus mlflow-skinny)
    <registry>/flops/deps:<deps hash>           the dependency layer both share (built once per dependency set)
    <registry>/flops/deps:<deps hash>-aggregator

Actor images carry labels from which the registry rebuilds the :class:`ImageManifest` (no side store):
the image key (with the repo URL's credentials removed), the dependency hash, the app directory.
"""

from __future__ import annotations

import json
import time

from pydantic import ValidationError

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.redaction import strip_userinfo

LEARNER_REPOSITORY = "flops/learner"
AGGREGATOR_REPOSITORY = "flops/aggregator"
DEPS_REPOSITORY = "flops/deps"
ACTOR_REPOSITORIES = {"learner": LEARNER_REPOSITORY, "aggregator": AGGREGATOR_REPOSITORY}
# The FL-actor base image FLOPS makes locally (deploy/make-base-image.sh actor); FLOPS_BASE_IMAGE overrides it.
DEFAULT_BASE_IMAGE = "flops-base:bookworm"
APP_DIR = "/opt/flops/app"  # the repo code plus the generated Flower app, inside both actor images
VENV_DIR = "/opt/flops/venv"

LABEL_KEY = "org.flops.key"
LABEL_DIGEST = "org.flops.digest"
LABEL_ROLE = "org.flops.role"
LABEL_PROJECT = "org.flops.project"
LABEL_COMMIT = "org.flops.commit"
LABEL_REPO = "org.flops.repo"
LABEL_DEPENDENCY_HASH = "org.flops.dependency-hash"
LABEL_DEPS_IMAGE = "org.flops.deps-image"
LABEL_APP_DIR = "org.flops.app-dir"
LABEL_CREATED = "org.flops.created"


def image_ref(registry: str, repository: str, tag: str) -> str:
    """``registry/repository:tag``."""
    return f"{registry.rstrip('/')}/{repository}:{tag}"


def actor_ref(registry: str, role: str, digest: str) -> str:
    """The reference of one actor image (``role`` is ``learner`` or ``aggregator``)."""
    return image_ref(registry, ACTOR_REPOSITORIES[role], digest)


def public_key(key: ImageKey) -> ImageKey:
    """The key as labels carry it: the repo URL without credentials."""
    return key.model_copy(update={"repo_url": strip_userinfo(key.repo_url)})


def actor_labels(key: ImageKey, role: str, project_id: str, dependency_hash: str, deps_image: str) -> dict[str, str]:
    """The labels of an actor image."""
    shown = public_key(key)
    return {
        LABEL_KEY: shown.model_dump_json(),
        LABEL_DIGEST: key.digest,
        LABEL_ROLE: role,
        LABEL_PROJECT: project_id,
        LABEL_COMMIT: key.commit,
        LABEL_REPO: shown.repo_url,
        LABEL_DEPENDENCY_HASH: dependency_hash,
        LABEL_DEPS_IMAGE: deps_image,
        LABEL_APP_DIR: APP_DIR,
        LABEL_CREATED: f"{time.time():.3f}",
        "org.opencontainers.image.revision": key.commit,
        "org.opencontainers.image.source": shown.repo_url,
    }


def manifest_from_labels(registry: str, labels: dict[str, str], key: ImageKey | None = None) -> ImageManifest | None:
    """The manifest an actor image's labels describe; None if they are not FLOps labels or not of ``key``.

    With ``key`` the returned manifest carries that key (its URL may hold credentials the labels lack).
    """
    try:
        labelled = ImageKey.model_validate(json.loads(labels[LABEL_KEY]))
        digest = labels[LABEL_DIGEST]
        created = float(labels.get(LABEL_CREATED, "0"))
    except (KeyError, ValueError, ValidationError):
        return None
    if key is not None:
        if public_key(key) != labelled or key.digest != digest:
            return None
        labelled = key
    return ImageManifest(
        key=labelled,
        digest=digest,
        dependency_hash=labels.get(LABEL_DEPENDENCY_HASH, ""),
        learner=actor_ref(registry, "learner", digest),
        aggregator=actor_ref(registry, "aggregator", digest),
        app_dir=labels.get(LABEL_APP_DIR, APP_DIR),
        created_at=created,
    )
