import os
from typing import Any, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from data_manager import DataManager  # noqa: E402
from flops_utils.ml_repo_templates import ModelManagerTemplate  # noqa: E402

N_FEATURES = 64  # 8x8 digits
N_CLASSES = 10


class ModelManager(ModelManagerTemplate):
    def __init__(self):
        tf.keras.utils.set_random_seed(0)  # the same initial weights everywhere
        self.model = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(N_FEATURES,)),
                tf.keras.layers.Dense(64, activation="relu"),
                tf.keras.layers.Dense(N_CLASSES, activation="softmax"),
            ]
        )
        self.model.compile(
            optimizer=tf.keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def set_model_data(self) -> None:
        (self.x_train, self.y_train), (self.x_test, self.y_test) = DataManager().get_data()

    def get_model(self) -> Any:
        return self.model

    def get_input_example(self) -> Any:
        return np.zeros((1, N_FEATURES), dtype=np.float32)

    def get_model_parameters(self) -> Any:
        return self.model.get_weights()

    def set_model_parameters(self, parameters) -> None:
        self.model.set_weights(parameters)

    def fit_model(self) -> int:
        self.model.fit(self.x_train, self.y_train, epochs=5, batch_size=32, verbose=0)
        return len(self.x_train)

    def evaluate_model(self) -> Tuple[Any, Any, int]:
        loss, accuracy = self.model.evaluate(self.x_test, self.y_test, batch_size=256, verbose=0)
        return loss, accuracy, len(self.x_test)
