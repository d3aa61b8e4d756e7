"""The steps of a build, in order; their names appear in BUILD_STEP and BUILD_FAILED events."""

from __future__ import annotations

from enum import StrEnum


class BuildStep(StrEnum):
    """One step of a build (``data.step`` of BUILD_STEP and BUILD_FAILED events)."""

    CLONE = "clone"  # fetch exactly the commit of the image key
    CONTRACT = "contract"  # static check of the ML repo contract (ast)
    DEPENDENCIES = "dependencies"  # read and normalize the dependency list, hash it
    ENVIRONMENTS = "environments"  # learner and aggregator runtimes (reused when the hash matches)
    APP = "app"  # the repo code plus the generated Flower app config
    IMPORT_CHECK = "import_check"  # import model_manager in the learner runtime, probe ModelManager()
    PUBLISH = "publish"  # the manifest in the registry
    # serving builds (stage 6)
    DOWNLOAD = "download"  # the registered model version's files from MLflow
    SERVING_ENVIRONMENT = "serving_environment"  # MLflow's scoring server and the flavor's libraries
    LOAD_CHECK = "load_check"  # load the model in the serving runtime, as the inference service will


ACTOR_BUILD_STEPS = (
    BuildStep.CLONE,
    BuildStep.CONTRACT,
    BuildStep.DEPENDENCIES,
    BuildStep.ENVIRONMENTS,
    BuildStep.APP,
    BuildStep.IMPORT_CHECK,
    BuildStep.PUBLISH,
)
