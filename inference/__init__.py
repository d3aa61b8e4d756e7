"""The inference service: MLflow's scoring server for one registered model version (stage 6)."""
