"""The embedded management suite: broker, store, MLflow, example-repo server and manager on one machine."""
