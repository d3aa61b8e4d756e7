"""The addon-style PyTorch repo's CNN trained centrally (run with a learner runtime's interpreter).

``python central_cnn.py REPO_DIR TAG EPOCHS DATA_DIR...``: pools every node's ``<TAG>.*.parquet`` split as
the repo splits it (``datasets``' ``train_test_split(test_size=0.2, seed=42)`` per node), trains the repo's
own ``Net`` with its optimizer on the pooled training rows for EPOCHS epochs, and prints the pooled test
loss and accuracy as JSON. Only what the runtime has is imported (torch, datasets, pyarrow, flops_utils).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

Rows = tuple[torch.Tensor, torch.Tensor]


def node_split(directory: Path, tag: str) -> tuple[Rows, Rows]:
    """One node's (train, test) tensors, split as ``load_dataset().train_test_split(0.2, seed=42)`` splits."""
    files = sorted((directory / tag).glob(f"{tag}.*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    split = datasets.Dataset(datasets.table.InMemoryTable(table)).with_format("numpy")
    split = split.train_test_split(test_size=0.2, seed=42)

    def tensors(part: datasets.Dataset) -> Rows:
        images = torch.tensor(np.stack(part["image"]), dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        return images, torch.tensor(part["label"], dtype=torch.long)

    return tensors(split["train"]), tensors(split["test"])


def main(argv: list[str]) -> None:
    repo, tag, epochs, data_dirs = Path(argv[0]), argv[1], int(argv[2]), [Path(d) for d in argv[3:]]
    sys.path.insert(0, str(repo))
    from model_manager import Net  # the repo's own model

    torch.set_num_threads(1)
    nodes = [node_split(d, tag) for d in data_dirs]
    train = TensorDataset(torch.cat([n[0][0] for n in nodes]), torch.cat([n[0][1] for n in nodes]))
    x_test, y_test = torch.cat([n[1][0] for n in nodes]), torch.cat([n[1][1] for n in nodes])
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)  # as the repo's fit_model
    loader = DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(x_test)
        loss = nn.CrossEntropyLoss(reduction="sum")(out, y_test).item() / len(y_test)
        accuracy = (out.argmax(dim=1) == y_test).float().mean().item()
    print(json.dumps({"loss": loss, "accuracy": accuracy, "test_rows": len(y_test)}))


if __name__ == "__main__":
    main(sys.argv[1:])
