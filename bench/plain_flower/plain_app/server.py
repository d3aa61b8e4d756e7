"""Plain Flower ServerApp: FedAvg over all connected nodes, as the Flower docs do it."""

from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from model_manager import ModelManager

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the configured number of FedAvg rounds."""
    rounds = int(context.run_config["num-server-rounds"])
    strategy = FedAvg(min_train_nodes=2, min_evaluate_nodes=2, min_available_nodes=2)
    result = strategy.start(
        grid=grid, initial_arrays=ArrayRecord(ModelManager().get_model_parameters()), num_rounds=rounds
    )
    print("plain flower done", dict(result.evaluate_metrics_clientapp.get(rounds, {})), flush=True)
