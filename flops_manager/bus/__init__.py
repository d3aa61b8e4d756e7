"""FLOps manager: bus."""
