"""Hierarchical mode's numbers, shared by the manager and the actors: the root's view of a cycle."""

from __future__ import annotations

from flops_common.sla import TrainingConfiguration

# What a cycle may take beyond its cluster rounds: the hand-over both ways and the root's own exchange.
CYCLE_MARGIN_S = 30.0


def cycle_timeout_s(training: TrainingConfiguration, connect_timeout_s: float) -> float:
    """How long the root waits for a cluster's reply to one cycle: its learners connecting (first cycle),
    ``training_rounds`` train rounds and one evaluation, each within ``round_timeout_s``, and a margin."""
    return connect_timeout_s + (training.training_rounds + 1) * training.round_timeout_s + CYCLE_MARGIN_S


def root_training(training: TrainingConfiguration, clusters: int, connect_timeout_s: float) -> TrainingConfiguration:
    """The root's training configuration: its rounds are the cycles, its participants the cluster aggregators.

    ``clusters`` is how many must reply (``min_clusters``); evaluation at the root is on when the clusters evaluate.
    """
    return training.model_copy(
        update={
            "training_rounds": training.training_cycles or 1,
            "min_available_clients": clusters,
            "min_fit_clients": clusters,
            "min_evaluate_clients": clusters if training.min_evaluate_clients > 0 else 0,
            "learners": None,
            "round_timeout_s": cycle_timeout_s(training, connect_timeout_s),
        }
    )
