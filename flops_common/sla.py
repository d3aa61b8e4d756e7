"""The project SLA a user POSTs: the anchor's fields plus FLOps' own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

ALLOWED_REPO_SCHEMES = ("https", "ssh", "git", "file")
_SCP_LIKE = r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^:]"


class ModelFlavor(StrEnum):
    """ML frameworks whose models the aggregator can log to MLflow (the addon's four)."""

    SKLEARN = "sklearn"
    PYTORCH = "pytorch"
    KERAS = "keras"
    TENSORFLOW = "tensorflow"


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
    """The addon's post-training steps (stage 6): build a serving artifact of the registered model, deploy it.

    ``deploy_inference_service`` (FLOps' earlier name) is read as ``deploy_trained_model_image``;
    a deploy step implies the build.
    """

    BUILD_IMAGE_FOR_TRAINED_MODEL = "build_image_for_trained_model"
    DEPLOY_TRAINED_MODEL_IMAGE = "deploy_trained_model_image"

    @classmethod
    def _missing_(cls, value: object) -> PostTrainingStep | None:
        return cls.DEPLOY_TRAINED_MODEL_IMAGE if value == "deploy_inference_service" else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Strategy constructor options FLOps sets itself, each with where its value comes from; an SLA's
# strategy options may not set them. The one list: the submit check in fl_actors uses it too.
RESERVED_STRATEGY_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "min_train_nodes": "training_configuration.min_fit_clients",
        "min_evaluate_nodes": "training_configuration.min_evaluate_clients",
        "min_available_nodes": "training_configuration.min_available_clients",
        "weighted_by_key": "the record keys of FLOps' ClientApp",
        "arrayrecord_key": "the record keys of FLOps' ClientApp",
        "configrecord_key": "the record keys of FLOps' ClientApp",
        "train_metrics_aggr_fn": "FLOps' metric aggregation",
        "evaluate_metrics_aggr_fn": "FLOps' metric aggregation",
    }
)


def reserved_option_reason(option: str) -> str | None:
    """Why an SLA may not set strategy option ``option`` (``None`` when it may)."""
    source = RESERVED_STRATEGY_OPTIONS.get(option)
    if source is None:
        return None
    return f"{option!r} is set by FLOps from {source}, not by strategy options"


class StrategyConfig(_Strict):
    """A Flower strategy and keyword options for its constructor (numbers, strings, booleans)."""

    name: StrategyName = StrategyName.FEDAVG
    options: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _no_reserved_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        reasons = [reason for option in sorted(value) if (reason := reserved_option_reason(option))]
        if reasons:
            raise ValueError("; ".join(reasons))
        return value


class TrainingConfiguration(_Strict):
    """How the federated training runs."""

    mode: Literal["classic", "hierarchical"] = Field(
        default="classic",
        description="classic: one aggregator over all learners. hierarchical: a root aggregator over one cluster "
        "aggregator per cluster, each over its own learners; training_rounds and min_*_clients count per cluster.",
    )
    training_cycles: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="hierarchical mode: root rounds; in each, every cluster runs training_rounds rounds.",
    )
    min_clusters: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="hierarchical mode: clusters that must take part (placed at start, replying each cycle); "
        "default: every cluster that can be placed.",
    )
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
        if self.mode == "classic":
            for name in ("training_cycles", "min_clusters"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to mode 'hierarchical' only")
        elif self.training_cycles is None:
            raise ValueError("training_cycles is required in mode 'hierarchical' (root rounds, 1-1000)")
        if self.learners is not None and self.learners < self.min_available_clients:
            raise ValueError(
                f"learners ({self.learners}) must be at least min_available_clients ({self.min_available_clients})"
            )
        return self

    @property
    def learner_count(self) -> int:
        """How many learner instances to deploy (n)."""
        return self.learners or self.min_available_clients

    @property
    def hierarchical(self) -> bool:
        """Whether a root aggregator runs cycles over cluster aggregators."""
        return self.mode == "hierarchical"


class ResourceConstraints(_Strict):
    """Per-actor resource limits (memory in MB); a memory below the flavor's floor is raised to it."""

    memory: int | None = Field(default=None, ge=1, le=1_048_576)
    vcpus: float | None = Field(default=None, gt=0, le=256)
    storage: int | None = Field(default=None, ge=0)


# Per flavor, the memory (MB) one actor needs: the peak RSS summed over all processes of an aggregator or a
# learner of the digits examples on the local backend (sklearn 837, pytorch 684, keras on TensorFlow 1337),
# rounded up with headroom. A limit below it would kill the actor, so it is raised to it.
MEMORY_FLOOR_MB: dict[ModelFlavor, int] = {
    ModelFlavor.SKLEARN: 1024,
    ModelFlavor.PYTORCH: 1024,
    ModelFlavor.KERAS: 1536,
    ModelFlavor.TENSORFLOW: 1536,
}


def memory_floor_mb(flavor: ModelFlavor) -> int:
    """The smallest memory limit (MB) FLOps gives an actor of ``flavor``."""
    return MEMORY_FLOOR_MB[flavor]


class ProjectSLA(_Strict):
    """What a user asks FLOps to do: the anchor's SLA plus a git ref, strategy, timeouts.

    ``warnings`` (not a field) lists what validation changed, e.g. a memory limit raised to its floor.
    """

    customerID: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.@-]+$",
        validation_alias=AliasChoices("customerID", "customer_id"),
        description="Who owns the project; `customer_id` (the addon's other spelling) is accepted too.",
    )
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
    use_devel_base_images: bool = Field(
        default=False,
        description="Accepted from the addon's SLA and changes nothing: FLOps has one base image and its "
        "builds are fast without a development variant.",
    )
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _memory_floor(self) -> ProjectSLA:
        memory = self.resource_constraints.memory
        floor = memory_floor_mb(self.ml_model_flavor)
        if memory is not None and memory < floor:
            # The addon never applied limits, so its SLAs ask for less than an actor needs: raise, don't kill.
            self.resource_constraints = self.resource_constraints.model_copy(update={"memory": floor})
            self._warnings.append(
                f"resource_constraints.memory {memory} MB is below what a {self.ml_model_flavor.value} actor "
                f"needs; raised to {floor} MB"
            )
        return self

    @property
    def warnings(self) -> list[str]:
        """What validation changed in the SLA as submitted (empty when nothing)."""
        return list(self._warnings)

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
