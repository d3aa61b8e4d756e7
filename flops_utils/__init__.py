"""FLOps' own ``flops_utils``: the import paths of the Oakestra FLOps addon's utils library, so ML repos
written for the addon run unchanged on FLOps.

FLOps copies this package into a repo's actor runtimes only when the repo imports it (see
``image_builder/flops_utils_support.py``). Nothing here talks to FLOps' manager, bus or MLflow.
"""
