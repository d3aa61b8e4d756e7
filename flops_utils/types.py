"""The addon's shared enums, with the values its SLAs use."""

from __future__ import annotations

import enum


class CustomEnum(enum.Enum):
    """An enum whose ``str()`` is its value."""

    def __str__(self) -> str:
        return str(self.value)


class MLModelFlavor(enum.StrEnum):
    """The MLflow model flavors an SLA can name."""

    SKLEARN = "sklearn"
    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"
    KERAS = "keras"


class FLOpsMode(enum.StrEnum):
    """Classic (one aggregator) or hierarchical training."""

    CLASSIC = "classic"
    HIERARCHICAL = "hierarchical"


class PlatformSupport(enum.StrEnum):
    """Platforms an SLA can ask images for."""

    LINUX_AMD64 = "linux/amd64"
    LINUX_ARM64 = "linux/arm64"


class AggregatorType(enum.Enum):
    """The aggregator roles of the addon."""

    CLASSIC_AGGREGATOR = "CLASSIC_AGGREGATOR"
    ROOT_AGGREGATOR = "ROOT_AGGREGATOR"
    CLUSTER_AGGREGATOR = "CLUSTER_AGGREGATOR"
