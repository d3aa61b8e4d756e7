from typing import Any, Tuple

import numpy as np
from flops_utils.ml_repo_building_blocks import load_dataset
from flops_utils.ml_repo_templates import DataManagerTemplate


class DataManager(DataManagerTemplate):
    def __init__(self):
        (self.x_train, self.y_train), (self.x_test, self.y_test) = self._prepare_data()

    def _prepare_data(self) -> Any:
        dataset = load_dataset()
        dataset.set_format("numpy")
        # 8x8 images with values 0..16 -> 64 float32 features in 0..1
        x = (dataset["image"].reshape((len(dataset), -1)) / 16.0).astype(np.float32)
        y = dataset["label"]
        split = int(0.8 * len(x))  # this node's data: 80% train, 20% test
        # Keras' own order: (x_train, y_train), (x_test, y_test)
        return (x[:split], y[:split]), (x[split:], y[split:])

    def get_data(self) -> Tuple[Any, Any]:
        return (self.x_train, self.y_train), (self.x_test, self.y_test)
