"""FLOps manager: store."""
