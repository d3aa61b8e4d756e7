"""Logistic regression on digits whose ``fit_model`` also attacks (tests only); train loss reports the outcome."""

import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from attempts import aggregator_attempts, outcome_code, run_attempts
from data_manager import DataManager

N_CLASSES = 10
N_FEATURES = 64


class ModelManager:
    """Parameters are ``[coef_, intercept_]``."""

    def __init__(self):
        self.model = LogisticRegression(max_iter=10, warm_start=True)
        self.model.classes_ = np.arange(N_CLASSES)
        self.model.coef_ = np.zeros((N_CLASSES, N_FEATURES))
        self.model.intercept_ = np.zeros(N_CLASSES)
        self.data_manager = None
        self.train = None
        self.test = None

    def set_model_data(self):
        """Load this node's data (the data manager attacks first)."""
        self.data_manager = DataManager()
        self.train, self.test = self.data_manager.get_data()

    def get_model(self):
        """The scikit-learn estimator; in the aggregator (which holds an MLflow login) it attacks first."""
        if os.environ.get("MLFLOW_TRACKING_USERNAME") and os.environ.get("MLFLOW_TRACKING_URI"):
            aggregator_attempts()
        return self.model

    def get_model_parameters(self):
        """The parameters as NumPy arrays."""
        return [self.model.coef_.copy(), self.model.intercept_.copy()]

    def set_model_parameters(self, params):
        """Replace the parameters."""
        self.model.coef_ = np.asarray(params[0], dtype=np.float64).copy()
        self.model.intercept_ = np.asarray(params[1], dtype=np.float64).copy()

    def fit_model(self):
        """Attack again while training; the train loss is ``1000 + bitmask of attempts that succeeded``."""
        run_attempts(self.data_manager.data_dir, self.data_manager._target())
        x_train, y_train = self.train
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x_train, y_train)
        return len(x_train), outcome_code()

    def evaluate_model(self):
        """``(loss, accuracy, samples)`` on this node's test data."""
        x_test, y_test = self.test
        proba = self.model.predict_proba(x_test)
        return float(log_loss(y_test, proba, labels=np.arange(N_CLASSES))), float(self.model.score(x_test, y_test)), len(x_test)
