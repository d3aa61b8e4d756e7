"""The project SLA a user POSTs: the anchor's fields plus FLOps' own."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ALLOWED_REPO_SCHEMES = ("https", "ssh", "git", "file")
_SCP_LIKE = r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^:]"


class ModelFlavor(StrEnum):
    """ML frameworks whose models the aggregator can log to MLflow."""

    SKLEARN = "sklearn"
    PYTORCH = "pytorch"


class Platform(StrEnum):
    """Platforms actor images are built for."""

    LINUX_AMD64 = "linux/amd64"
    LINUX_ARM64 = "linux/arm64"


class StrategyName(StrEnum):
    """Flower strategies (``flwr.serverapp.strategy``) an SLA may choose."""

    FEDAVG = "FedAvg"
    FEDPROX = "FedProx"
    FEDADAGRAD = "FedAdagrad"
    FEDADAM = "FedAdam"
    FEDYOGI = "FedYogi"
    FEDMEDIAN = "FedMedian"
    FEDTRIMMEDAVG = "FedTrimmedAvg"
    FEDAVGM = "FedAvgM"


class PostTrainingStep(StrEnum):
    """Anchor post-training steps (stage 6): build a serving artifact of the registered model, deploy it.

    Both deploy spellings start the inference service (the anchor's name and FLOps' earlier one);
    a deploy step implies the build.
    """

    BUILD_IMAGE_FOR_TRAINED_MODEL = "build_image_for_trained_model"
    DEPLOY_TRAINED_MODEL_IMAGE = "deploy_trained_model_image"
    DEPLOY_INFERENCE_SERVICE = "deploy_inference_service"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyConfig(_Strict):
    """A Flower strategy and keyword options for its constructor (numbers, strings, booleans)."""

    name: StrategyName = StrategyName.FEDAVG
    options: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _no_node_counts(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = {"min_train_nodes", "min_evaluate_nodes", "min_available_nodes"} & value.keys()
        if reserved:
            raise ValueError(f"{sorted(reserved)} come from training_configuration.min_*_clients, not strategy options")
        return value


class TrainingConfiguration(_Strict):
    """How the federated training runs."""

    mode: Literal["classic"] = "classic"
    data_tags: list[str] = Field(min_length=1, max_length=16)
    training_rounds: int = Field(default=3, ge=1, le=1000)
    min_available_clients: int = Field(default=1, ge=1, le=256)
    min_fit_clients: int = Field(default=1, ge=1, le=256)
    min_evaluate_clients: int = Field(default=1, ge=0, le=256)
    learners: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="n: learner instances to deploy (default: min_available_clients). "
        "A round needs only min_fit_clients (k) of them: k-of-n participation.",
    )
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    round_timeout_s: float = Field(default=120.0, gt=0, le=86400)

    @field_validator("data_tags")
    @classmethod
    def _tags_are_names(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not tag or len(tag) > 64 or not all(c.isalnum() or c in "-_." for c in tag):
                raise ValueError(f"data tag {tag!r} must be 1-64 characters of letters, digits, '-', '_', '.'")
        return tags

    @model_validator(mode="after")
    def _client_counts_fit(self) -> TrainingConfiguration:
        if self.min_fit_clients > self.min_available_clients:
            raise ValueError(
                f"min_fit_clients ({self.min_fit_clients}) must not exceed "
                f"min_available_clients ({self.min_available_clients})"
            )
        if self.min_evaluate_clients > self.min_available_clients:
            raise ValueError(
                f"min_evaluate_clients ({self.min_evaluate_clients}) must not exceed "
                f"min_available_clients ({self.min_available_clients})"
            )
        if self.learners is not None and self.learners < self.min_available_clients:
            raise ValueError(
                f"learners ({self.learners}) must be at least min_available_clients ({self.min_available_clients})"
            )
        return self

    @property
    def learner_count(self) -> int:
        """How many learner instances to deploy (n)."""
        return self.learners or self.min_available_clients


class ResourceConstraints(_Strict):
    """Per-actor resource limits (memory in MB)."""

    memory: int | None = Field(default=None, ge=64, le=1_048_576)
    vcpus: float | None = Field(default=None, gt=0, le=256)
    storage: int | None = Field(default=None, ge=0)


class ProjectSLA(_Strict):
    """What a user asks FLOps to do: the anchor's SLA plus a git ref, strategy, timeouts."""

    customerID: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    ml_repo_url: str = Field(min_length=1, max_length=2048)
    ml_repo_ref: str | None = Field(
        default=None,
        max_length=255,
        description="Branch, tag or commit to pin; default: the repo's default branch.",
    )
    ml_model_flavor: ModelFlavor
    training_configuration: TrainingConfiguration
    post_training_steps: list[PostTrainingStep] = Field(default_factory=list)
    resource_constraints: ResourceConstraints = Field(default_factory=ResourceConstraints)
    supported_platforms: list[Platform] = Field(default_factory=lambda: [Platform.LINUX_AMD64], min_length=1)
    verbose: bool = False

    @field_validator("ml_repo_url")
    @classmethod
    def _repo_url_scheme(cls, url: str) -> str:
        if url.startswith("-") or any(c.isspace() for c in url):
            raise ValueError("repo URL must not start with '-' or contain whitespace")
        if re.match(_SCP_LIKE, url):  # git@host:path is ssh
            return url
        parsed = urlparse(url)
        if parsed.password:
            raise ValueError("repo URL must not embed a password or token: it would be stored and logged")
        scheme = parsed.scheme
        if scheme not in ALLOWED_REPO_SCHEMES:
            raise ValueError(f"repo URL scheme {scheme or '(none)'!r} is not one of {', '.join(ALLOWED_REPO_SCHEMES)}")
        return url

    @field_validator("ml_repo_ref")
    @classmethod
    def _ref_is_safe(cls, ref: str | None) -> str | None:
        if ref is None:
            return ref
        if ref.startswith("-") or ".." in ref or any(c.isspace() or c in "~^:?*[\\" for c in ref):
            raise ValueError(f"{ref!r} is not a valid git branch, tag or commit")
        return ref

    @property
    def repo_host(self) -> str:
        """The host ``ml_repo_url`` names ('' for file URLs)."""
        if re.match(_SCP_LIKE, self.ml_repo_url):
            return self.ml_repo_url.split("@", 1)[1].split(":", 1)[0]
        return urlparse(self.ml_repo_url).hostname or ""

    @property
    def repo_scheme(self) -> str:
        """The URL scheme of ``ml_repo_url`` (``ssh`` for scp-like addresses)."""
        return "ssh" if re.match(_SCP_LIKE, self.ml_repo_url) else urlparse(self.ml_repo_url).scheme
