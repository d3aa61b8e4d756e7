"""Logistic regression on 8x8 digits, federated by FLOps (the ML repo contract)."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from data_manager import DataManager

N_CLASSES = 10
N_FEATURES = 64  # 8x8 pixels
MAX_ITER_PER_FIT = 10


class ModelManager:
    """Holds the model; parameters are ``[coef_, intercept_]``."""

    def __init__(self):
        self.model = LogisticRegression(max_iter=MAX_ITER_PER_FIT, warm_start=True)
        # Parameters exist before any data is seen, so the server can start from them.
        self.model.classes_ = np.arange(N_CLASSES)
        self.model.coef_ = np.zeros((N_CLASSES, N_FEATURES))
        self.model.intercept_ = np.zeros(N_CLASSES)
        self.train = None
        self.test = None

    def set_model_data(self):
        """Load this node's data."""
        self.train, self.test = DataManager().get_data()
        x_train, _ = self.train
        x_test, _ = self.test
        # Pixels are 0..16: scale to 0..1 so a few iterations go far.
        self.train = (x_train / 16.0, self.train[1])
        self.test = (x_test / 16.0, self.test[1])

    def get_model(self):
        """The scikit-learn estimator."""
        return self.model

    def get_model_parameters(self):
        """The parameters as a list of NumPy arrays."""
        return [self.model.coef_.copy(), self.model.intercept_.copy()]

    def set_model_parameters(self, params):
        """Replace the parameters."""
        self.model.coef_ = np.asarray(params[0], dtype=np.float64).copy()
        self.model.intercept_ = np.asarray(params[1], dtype=np.float64).copy()

    def fit_model(self):
        """Train a few iterations from the current parameters; return the samples used."""
        x_train, y_train = self.train
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x_train, y_train)
        return len(x_train)

    def evaluate_model(self):
        """Return ``(loss, accuracy, samples)`` on this node's test data."""
        x_test, y_test = self.test
        proba = self.model.predict_proba(x_test)
        loss = float(log_loss(y_test, proba, labels=np.arange(N_CLASSES)))
        accuracy = float(self.model.score(x_test, y_test))
        return loss, accuracy, len(x_test)
