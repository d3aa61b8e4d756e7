from collections import OrderedDict
from typing import Any, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from data_manager import DataManager
from flops_utils.ml_repo_templates import ModelManagerTemplate

torch.set_num_threads(1)


class Net(nn.Module):
    """A small CNN for 1x8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = x.view(-1, 8 * 4 * 4)
        return self.fc2(F.relu(self.fc1(x)))


class ModelManager(ModelManagerTemplate):
    def __init__(self):
        torch.manual_seed(0)  # the same initial weights everywhere
        self.model = Net()

    def set_model_data(self) -> None:
        self.trainloader, self.testloader = DataManager().get_data()

    def get_model(self) -> Any:
        return self.model

    def get_input_example(self) -> Any:
        return np.zeros((1, 1, 8, 8), dtype=np.float32)

    def get_model_parameters(self) -> Any:
        return [val.cpu().numpy() for _, val in self.model.state_dict().items()]

    def set_model_parameters(self, parameters) -> None:
        params_dict = zip(self.model.state_dict().keys(), parameters)
        state_dict = OrderedDict({k: torch.tensor(np.asarray(v)) for k, v in params_dict})
        self.model.load_state_dict(state_dict, strict=True)

    def fit_model(self) -> int:
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.model.train()
        for _ in range(2):  # local epochs
            for batch in self.trainloader:
                optimizer.zero_grad()
                criterion(self.model(batch["image"]), batch["label"]).backward()
                optimizer.step()
        return len(self.trainloader.dataset)

    def evaluate_model(self) -> Tuple[Any, Any, int]:
        criterion = nn.CrossEntropyLoss(reduction="sum")
        correct, loss = 0, 0.0
        self.model.eval()
        with torch.no_grad():
            for batch in self.testloader:
                outputs = self.model(batch["image"])
                loss += criterion(outputs, batch["label"]).item()
                correct += (outputs.argmax(dim=1) == batch["label"]).sum().item()
        n = len(self.testloader.dataset)
        return loss / n, correct / n, n
