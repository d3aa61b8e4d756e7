"""FLOps manager: registry."""
