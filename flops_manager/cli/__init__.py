"""FLOps manager: cli."""
