"""What an ML repo calls to get this node's data (the addon's ``flops_utils.ml_repo_building_blocks``)."""

from flops_utils.ml_repo_building_blocks.flops_learner_files_proxy import load_dataset

__all__ = ["load_dataset"]
