"""A minimal valid ML repo: softmax regression in NumPy (the FLOps ML repo contract)."""

import numpy as np

from data_manager import DataManager

N_FEATURES = 4
N_CLASSES = 3
LEARNING_RATE = 0.5
EPOCHS_PER_FIT = 5


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Model:
    """Parameters are ``[weights, bias]``; they exist before any data is seen."""

    def __init__(self):
        self.weights = np.zeros((N_FEATURES, N_CLASSES))
        self.bias = np.zeros(N_CLASSES)
        self.train = None
        self.test = None

    def set_model_data(self):
        self.train, self.test = DataManager().get_data()

    def get_model(self):
        return {"weights": self.weights, "bias": self.bias}

    def get_model_parameters(self):
        return [self.weights.copy(), self.bias.copy()]

    def set_model_parameters(self, params):
        self.weights = np.asarray(params[0], dtype=np.float64).copy()
        self.bias = np.asarray(params[1], dtype=np.float64).copy()

    def fit_model(self):
        x, y = self.train
        onehot = np.eye(N_CLASSES)[y]
        for _ in range(EPOCHS_PER_FIT):
            grad = _softmax(x @ self.weights + self.bias) - onehot
            self.weights -= LEARNING_RATE * x.T @ grad / len(x)
            self.bias -= LEARNING_RATE * grad.mean(axis=0)
        return len(x)

    def evaluate_model(self):
        x, y = self.test
        proba = _softmax(x @ self.weights + self.bias)
        loss = float(-np.log(proba[np.arange(len(y)), y] + 1e-12).mean())
        accuracy = float((proba.argmax(axis=1) == y).mean())
        return loss, accuracy, len(x)
