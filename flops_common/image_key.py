"""Names actor images by content: the same inputs always give the same key."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel

from flops_common.sla import ModelFlavor

# Bump when the build recipe changes what an actor image holds; the actors' code itself is hashed into
# the key the manager looks up (image_builder.actor_runtime.actor_runtime_id).
ACTOR_RUNTIME_VERSION = "1"


class ImageKey(BaseModel):
    """What an actor image is built from. Its digest is the registry tag."""

    repo_url: str
    commit: str
    flavor: ModelFlavor
    platform: str = "linux/amd64"
    runtime: str = ACTOR_RUNTIME_VERSION

    @property
    def digest(self) -> str:
        """A short stable hash of the key, used as the image tag."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:24]


class ImageManifest(BaseModel):
    """What the builder published for one key: where the learner and aggregator live."""

    key: ImageKey
    digest: str
    dependency_hash: str
    learner: str  # local: an environment directory; oci: an image reference
    aggregator: str
    app_dir: str  # local: the repo code plus the generated Flower app; oci: path inside the image
    created_at: float
    build_seconds: float = 0.0
    step_seconds: dict[str, float] = {}
