"""A plain Flower app (no FLOps) training the same ML repo: the P3 baseline."""
