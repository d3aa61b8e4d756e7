"""FLOps manager: api."""
