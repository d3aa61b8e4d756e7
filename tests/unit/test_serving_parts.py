"""Stage 6's small parts: model names, version tags, serving requirements, the oci plan's build context."""

from __future__ import annotations

from pathlib import Path

from fl_actors.registration import version_tags
from flops_common.jobs import BusConfig
from flops_common.serving import RegisteredModel, ServingBuildJob, ServingManifest, registered_model_name
from flops_common.sla import ModelFlavor
from image_builder.notify import Notifier
from image_builder.plans.serving_oci import (
    DEPS_DOCKERFILE,
    MODEL_DIR,
    OciServingPlan,
    deps_layer_hash,
    serving_repository,
    serving_tag,
)
from image_builder.serving_runtime import dependency_hash, model_requirements, serving_requirements
from image_builder.timing import StepRecorder

MODEL = RegisteredModel(name="flops-alice-digits", version="4", uri="models:/flops-alice-digits/4")


def test_registered_model_name_is_per_customer_and_repo() -> None:
    assert registered_model_name("alice", "git://127.0.0.1:9418/digits_sklearn") == "flops-alice-digits_sklearn"
    assert registered_model_name("bob", "https://github.com/org/Repo.git/") == "flops-bob-Repo"
    assert registered_model_name("bob", "git@github.com:org/my repo.git") == "flops-bob-my-repo"


def test_version_tags_add_the_final_metrics() -> None:
    tags = version_tags({"flops.project_id": "p1"}, {"accuracy": 0.91, "loss": None})
    assert tags == {"flops.project_id": "p1", "flops.metric.accuracy": "0.91"}


def test_serving_requirements_drop_mlflow_and_keep_the_models_pins(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("mlflow==3.17.2\n# comment\nscikit-learn==1.5.0\nnumpy\n-r other.txt\n")
    model = model_requirements(tmp_path)
    assert model == ["scikit-learn==1.5.0", "numpy"]
    reqs = serving_requirements(model, "sklearn")
    assert reqs[0].startswith("mlflow-skinny==") and "scikit-learn==1.5.0" in reqs and "skops" in reqs
    assert "scikit-learn" not in reqs  # the model's pin wins over the flavor's default
    assert not any(r.startswith("mlflow==") for r in reqs)
    assert "torch" in serving_requirements([], "pytorch")
    assert model_requirements(tmp_path / "missing") == []


def test_dependency_hash_follows_requirements_only() -> None:
    assert dependency_hash(["a", "b"], []) == dependency_hash(["b", "a"], [])
    assert dependency_hash(["a"], []) != dependency_hash(["a==1"], [])


def test_oci_plan_layers_hold_only_serving_parts(tmp_path: Path) -> None:
    job = ServingBuildJob(
        project_id="p1",
        bus=BusConfig(),
        model=MODEL,
        flavor=ModelFlavor.SKLEARN,
        customer_id="Alice",
        plan="oci",
        registry="127.0.0.1:5000",
        tracking_uri="http://127.0.0.1:5001",
        base_image="flops-base:bookworm",
    )
    plan = OciServingPlan(job, tmp_path, StepRecorder(Notifier(BusConfig(port=1), "p1")))
    assert plan.ref == "127.0.0.1:5000/alice/trained_model:flops-alice-digits-4"
    assert serving_repository("A B") == "a-b/trained_model"
    assert serving_tag(MODEL, "alice") == "digits-4"
    # The dependency layer's key follows the requirements (as a set) and the base image, nothing else.
    assert deps_layer_hash(["a", "b"], "sklearn", "sha256:1") == deps_layer_hash(["b", "a"], "sklearn", "sha256:1")
    assert deps_layer_hash(["a"], "sklearn", "sha256:1") not in {
        deps_layer_hash(["a"], "sklearn", "sha256:2"),
        deps_layer_hash(["a"], "sklearn", "sha256:1", ["torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl"]),
        deps_layer_hash([], "sklearn", "x"),
    }
    assert "flops-stage.py serving {url}" in DEPS_DOCKERFILE and "mlflow" not in DEPS_DOCKERFILE
    model_dir = tmp_path / "download"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    manifest = ServingManifest(
        model=MODEL,
        flavor=ModelFlavor.SKLEARN,
        artifact=plan.ref,
        model_dir=MODEL_DIR,
        dependency_hash="h",
        created_at=0.0,
    )
    context = plan.model_context(model_dir, "127.0.0.1:5000/flops/serving-deps:h", manifest)
    assert sorted(p.name for p in (context / "lib").iterdir()) == ["flops_common", "inference"]
    assert (context / "model" / "MLmodel").is_file()
    dockerfile = (context / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 1 and "FROM 127.0.0.1:5000/flops/serving-deps:h\n" in dockerfile
    assert "org.flops.serving=" in dockerfile and f"-m inference --check {MODEL_DIR}" in dockerfile
