"""A small MLP (64 -> 64 -> 10) on 8x8 digits, federated by FLOps (the ML repo contract)."""

import numpy as np
import torch
from torch import nn

from data_manager import DataManager

N_FEATURES = 64  # 8x8 pixels
N_HIDDEN = 64
N_CLASSES = 10
EPOCHS_PER_FIT = 5
BATCH_SIZE = 32
LEARNING_RATE = 0.1

torch.set_num_threads(1)


def _build_model():
    torch.manual_seed(0)  # every node and the server start from the same weights
    return nn.Sequential(nn.Linear(N_FEATURES, N_HIDDEN), nn.ReLU(), nn.Linear(N_HIDDEN, N_CLASSES))


class ModelManager:
    """Holds the model; parameters are the state_dict tensors as NumPy arrays, in order."""

    def __init__(self):
        self.model = _build_model()
        self.train = None
        self.test = None

    def set_model_data(self):
        """Load this node's data as float tensors scaled to 0..1."""
        (x_train, y_train), (x_test, y_test) = DataManager().get_data()
        self.train = (torch.tensor(x_train / 16.0, dtype=torch.float32), torch.tensor(y_train))
        self.test = (torch.tensor(x_test / 16.0, dtype=torch.float32), torch.tensor(y_test))

    def get_model(self):
        """The PyTorch module."""
        return self.model

    def get_input_example(self):
        """An input of the right shape, so MLflow can export the model (optional, no data needed)."""
        return np.zeros((1, N_FEATURES), dtype=np.float32)

    def get_model_parameters(self):
        """The parameters as a list of NumPy arrays."""
        return [value.detach().cpu().numpy().copy() for value in self.model.state_dict().values()]

    def set_model_parameters(self, params):
        """Replace the parameters."""
        keys = list(self.model.state_dict().keys())
        state = {key: torch.tensor(np.asarray(value)) for key, value in zip(keys, params)}
        self.model.load_state_dict(state, strict=True)

    def fit_model(self):
        """Train a few epochs; return the samples used."""
        x_train, y_train = self.train
        optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(0)
        self.model.train()
        for _ in range(EPOCHS_PER_FIT):
            order = torch.randperm(len(x_train), generator=generator)
            for start in range(0, len(x_train), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                optimizer.zero_grad()
                loss = loss_fn(self.model(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
        return len(x_train)

    def evaluate_model(self):
        """Return ``(loss, accuracy, samples)`` on this node's test data."""
        x_test, y_test = self.test
        self.model.eval()
        with torch.no_grad():
            logits = self.model(x_test)
            loss = float(nn.functional.cross_entropy(logits, y_test))
            accuracy = float((logits.argmax(dim=1) == y_test).float().mean())
        return loss, accuracy, len(x_test)
