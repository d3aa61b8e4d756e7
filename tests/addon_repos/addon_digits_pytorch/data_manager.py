from typing import Any, Tuple

import torch
from flops_utils.ml_repo_building_blocks import load_dataset
from flops_utils.ml_repo_templates import DataManagerTemplate
from torch.utils.data import DataLoader


class DataManager(DataManagerTemplate):
    def __init__(self):
        self._prepare_data()

    def _prepare_data(self) -> None:
        dataset = load_dataset()
        dataset.set_format("numpy")
        # this node's data: 80% train, 20% test
        dataset_train_test = dataset.train_test_split(test_size=0.2, seed=42)

        def to_tensors(batch):
            """8x8 images 0..16 -> 1x8x8 float tensors in 0..1."""
            images = torch.tensor(batch["image"], dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
            return {"image": images, "label": torch.tensor(batch["label"], dtype=torch.long)}

        dataset_train_test = dataset_train_test.with_transform(to_tensors)
        generator = torch.Generator().manual_seed(0)
        self.trainloader = DataLoader(dataset_train_test["train"], batch_size=32, shuffle=True, generator=generator)
        self.testloader = DataLoader(dataset_train_test["test"], batch_size=64)

    def get_data(self) -> Tuple[Any, Any]:
        return self.trainloader, self.testloader
