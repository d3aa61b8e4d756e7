"""The FLOps manager: API, project state machine and clients of every boundary."""
