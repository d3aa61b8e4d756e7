"""Names of the records and metrics FLOps' ServerApp and ClientApp exchange."""

from __future__ import annotations

ARRAYS = "arrays"  # the strategies' default ArrayRecord key
CONFIG = "config"  # the strategies' default ConfigRecord key
METRICS = "metrics"
NUM_EXAMPLES = "num-examples"  # the strategies' default weighting key

TRAIN_LOSS = "train-loss"
EVAL_LOSS = "eval-loss"
EVAL_ACCURACY = "eval-accuracy"

# Train replies may carry the evaluation of the global model the learner received
# (config EVAL_GLOBAL = True), which saves one message exchange per round.
EVAL_GLOBAL = "eval-global"
GLOBAL_EVAL_LOSS = "global-eval-loss"
GLOBAL_EVAL_ACCURACY = "global-eval-accuracy"
GLOBAL_EVAL_EXAMPLES = "global-eval-num-examples"
GLOBAL_EVAL_KEYS = (GLOBAL_EVAL_LOSS, GLOBAL_EVAL_ACCURACY, GLOBAL_EVAL_EXAMPLES)

# Seconds a learner's ClientApp spent in the user's code for one message (loading its data,
# evaluating, fitting): the round time beyond it is FLOps' and Flower's overhead.
COMPUTE_S = "compute-s"
