"""Registry backends built from settings."""

from __future__ import annotations

from flops_manager.registry.local import LocalRegistry
from flops_manager.settings import Settings


def local(settings: Settings) -> LocalRegistry:
    """Environments in the manager's home directory."""
    return LocalRegistry(settings.registry_dir)
