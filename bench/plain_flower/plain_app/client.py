"""Plain Flower ClientApp around the ML repo's ModelManager (copied next to this app)."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from model_manager import ModelManager

app = ClientApp()


def _manager(msg: Message) -> ModelManager:
    manager = ModelManager()
    manager.set_model_data()
    manager.set_model_parameters(msg.content.array_records["arrays"].to_numpy_ndarrays())
    return manager


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Fit locally, return the new parameters."""
    manager = _manager(msg)
    result = manager.fit_model()
    samples = result[0] if isinstance(result, tuple) else result
    content = RecordDict(
        {"arrays": ArrayRecord(manager.get_model_parameters()), "metrics": MetricRecord({"num-examples": samples})}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the global model locally."""
    loss, accuracy, n = _manager(msg).evaluate_model()
    metrics = MetricRecord({"eval_loss": float(loss), "eval_accuracy": float(accuracy), "num-examples": int(n)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
