"""FLOps' Flower ClientApp: trains and evaluates the user's ``ModelManager`` on local data.

Learners carry no MLflow: nothing here (or imported from here) may import it.
"""

from __future__ import annotations

import time

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fl_actors import cluster_client, ml_repo
from fl_actors import records as rk

app = ClientApp()


def _prepared_manager(msg: Message) -> ml_repo.ModelManagerLike:
    """A ModelManager with this node's data and the parameters the server sent."""
    manager = ml_repo.new_model_manager()
    manager.set_model_data()
    arrays = msg.content.array_records[rk.ARRAYS]
    manager.set_model_parameters(arrays.to_numpy_ndarrays())
    return manager


def _config(msg: Message) -> ConfigRecord:
    return msg.content.config_records.get(rk.CONFIG, ConfigRecord())


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Fit the received model on local data; reply with new parameters and sample count.

    With ``eval-global`` in the config the received (global) model is evaluated first and the
    result rides along in the reply, so the server needs no separate evaluate round trip.
    """
    if cluster_client.is_cluster_aggregator():  # hierarchical mode: the cluster's rounds answer the root
        return cluster_client.forward(msg, "train")
    started = time.perf_counter()
    manager = _prepared_manager(msg)
    metrics: dict[str, int | float | list[int] | list[float]] = {}
    if bool(_config(msg).get(rk.EVAL_GLOBAL, False)):
        loss, accuracy, n_eval = manager.evaluate_model()
        metrics[rk.GLOBAL_EVAL_LOSS] = float(loss)
        metrics[rk.GLOBAL_EVAL_ACCURACY] = float(accuracy)
        metrics[rk.GLOBAL_EVAL_EXAMPLES] = int(n_eval)
    samples, train_loss = ml_repo.parse_fit_result(manager.fit_model())
    metrics[rk.NUM_EXAMPLES] = samples
    if train_loss is not None:
        metrics[rk.TRAIN_LOSS] = train_loss
    metrics[rk.COMPUTE_S] = time.perf_counter() - started
    content = RecordDict(
        {
            rk.ARRAYS: ArrayRecord(manager.get_model_parameters()),
            rk.METRICS: MetricRecord(metrics),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the received model on local test data; reply with loss, accuracy, samples."""
    if cluster_client.is_cluster_aggregator():
        return cluster_client.forward(msg, "evaluate")
    started = time.perf_counter()
    manager = _prepared_manager(msg)
    loss, accuracy, n_eval = manager.evaluate_model()
    metrics = MetricRecord(
        {
            rk.EVAL_LOSS: float(loss),
            rk.EVAL_ACCURACY: float(accuracy),
            rk.NUM_EXAMPLES: int(n_eval),
            rk.COMPUTE_S: time.perf_counter() - started,
        }
    )
    return Message(content=RecordDict({rk.METRICS: metrics}), reply_to=msg)
