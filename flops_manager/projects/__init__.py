"""FLOps manager: projects."""
