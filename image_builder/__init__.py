"""The FLOps builder service: turns one commit of an ML repo into learner and aggregator runtimes.

``python -m image_builder`` reads a :class:`flops_common.jobs.BuildJob` from ``FLOPS_JOB``, builds it
and exits 0 (BUILD_SUCCEEDED, data.manifest) or 1 (BUILD_FAILED, message = cause, data.step).
Each step is timed and reported as a BUILD_STEP event (data.step, data.seconds, step details):

    clone         GitPython: depth-1 fetch of exactly ``key.commit`` (partial clone as fallback)
    contract      static ML repo contract (ast): model_manager.py/ModelManager + 6 methods,
                  data_manager.py/DataManager, a dependency file
    dependencies  normalized requirement list and the dependency hash runtimes are keyed by
    environments  the plan's runtimes (local: two uv virtualenvs, reused when the hash matches)
    app           ``fl_actors.fab.prepare_app_dir``: repo code plus the Flower app config
    import_check  imports the repo in both runtimes and probes ``ModelManager()``
    publish       the manifest in the registry (the image directory appears atomically)

Plans (``image_builder.plans``) hide how runtimes are built and published: ``local`` now, ``oci``
later behind the same ``BuildPlan`` interface. Besides ``flops_common.local_layout``, the local plan
uses ``ROOT/tmp/`` (one scratch directory per build, always removed) and ``ROOT/locks/`` (flock files).
``FLOPS_UV_OFFLINE_FIRST=0`` makes uv ask the index on every install (default: cache first).
"""
