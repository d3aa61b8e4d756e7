"""FLOps manager: tracking."""
