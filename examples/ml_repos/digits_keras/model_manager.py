"""A small Keras MLP (64 -> 64 -> 10) on 8x8 digits, federated by FLOps (the ML repo contract).

Keras 3 on its TensorFlow backend; MLflow logs the final model in its ``keras`` flavor.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402

from data_manager import DataManager  # noqa: E402

N_FEATURES = 64  # 8x8 pixels
N_HIDDEN = 64
N_CLASSES = 10
EPOCHS_PER_FIT = 5
BATCH_SIZE = 32
LEARNING_RATE = 0.05


def _build_model():
    keras.utils.set_random_seed(0)  # every node and the server start from the same weights
    model = keras.Sequential(
        [
            keras.Input(shape=(N_FEATURES,)),
            keras.layers.Dense(N_HIDDEN, activation="relu"),
            keras.layers.Dense(N_CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class ModelManager:
    """Holds the model; parameters are its weights as NumPy arrays, in layer order."""

    def __init__(self):
        self.model = _build_model()
        self.train = None
        self.test = None

    def set_model_data(self):
        """Load this node's data, pixels (0..16) scaled to 0..1."""
        (x_train, y_train), (x_test, y_test) = DataManager().get_data()
        self.train = ((x_train / 16.0).astype(np.float32), y_train)
        self.test = ((x_test / 16.0).astype(np.float32), y_test)

    def get_model(self):
        """The Keras model."""
        return self.model

    def get_input_example(self):
        """An input of the right shape, so MLflow records a signature (optional, no data needed)."""
        return np.zeros((1, N_FEATURES), dtype=np.float32)

    def get_model_parameters(self):
        """The weights as a list of NumPy arrays."""
        return [np.asarray(w).copy() for w in self.model.get_weights()]

    def set_model_parameters(self, params):
        """Replace the weights."""
        self.model.set_weights([np.asarray(p) for p in params])

    def fit_model(self):
        """Train a few epochs from the current weights; return the samples used."""
        x_train, y_train = self.train
        self.model.fit(x_train, y_train, epochs=EPOCHS_PER_FIT, batch_size=BATCH_SIZE, shuffle=True, verbose=0)
        return len(x_train)

    def evaluate_model(self):
        """Return ``(loss, accuracy, samples)`` on this node's test data."""
        x_test, y_test = self.test
        loss, accuracy = self.model.evaluate(x_test, y_test, batch_size=256, verbose=0)
        return float(loss), float(accuracy), len(x_test)
