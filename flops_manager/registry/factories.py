"""Registry backends built from settings."""

from __future__ import annotations

from flops_manager.registry.local import LocalRegistry
from flops_manager.registry.oci import OciRegistry
from flops_manager.settings import Settings


def local(settings: Settings) -> LocalRegistry:
    """Environments in the manager's home directory."""
    return LocalRegistry(settings.registry_dir)


def oci(settings: Settings) -> OciRegistry:
    """Images in an OCI registry (CNCF distribution API v2)."""
    return OciRegistry(settings.oci_registry, ca_file=settings.oci_registry_ca)
