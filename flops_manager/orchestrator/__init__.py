"""FLOps manager: orchestrator."""
