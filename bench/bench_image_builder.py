"""Build times of ``python -m image_builder`` (local plan) for an sklearn repo: cold, warm, code-only.

    uv run python bench/bench_image_builder.py [--repo examples/ml_repos/digits_sklearn] [--skip-cold]

cold: an empty uv cache (UV_CACHE_DIR in a temp dir; the user's cache is untouched) and an empty registry;
warm: the user's uv cache, an empty registry; code-only: a new commit with the same dependencies.
No broker is needed: events go nowhere (the builder logs that) and the manifest holds the timings.
The builder runs from a snapshot of the FLOps packages, so edits during the run do not change the
dependency hash (it covers the fl_actors and flops_common sources).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.builder_process import bench_job, run_builder  # noqa: E402
from flops_common.image_key import ImageManifest  # noqa: E402
from flops_common.local_layout import manifest_path  # noqa: E402
from tests.helpers.git_repos import file_url, make_git_repo  # noqa: E402


def snapshot(dest: Path) -> Path:
    """A copy of the packages the builder needs, importable ahead of the checkout."""
    for name in ("fl_actors", "flops_common", "image_builder"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def build(url: str, commit: str, registry: Path, extra_env: dict[str, str], code: Path) -> dict[str, object]:
    """Run one builder process; return its wall time and the manifest's timings."""
    job = bench_job(url, commit, registry=str(registry))
    log, wall = run_builder(job, {**extra_env, "PYTHONPATH": str(code)}, cwd=code, log_chars=3000)
    manifest = ImageManifest.model_validate_json(manifest_path(registry, job.key.digest).read_text())
    phases = [line for line in log.splitlines() if "step environments done" in line]
    return {
        "wall_s": round(wall, 2),
        "build_s": manifest.build_seconds,
        "steps": manifest.step_seconds,
        "environments": json.loads(phases[-1].split(" s ", 1)[1]) if phases else {},
    }


def main() -> None:
    """Run the three builds and print their timings as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=ROOT / "examples" / "ml_repos" / "digits_sklearn")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="flops-bench-") as tmp:
        base = Path(tmp)
        origin = base / "origin"
        first = make_git_repo(args.repo, origin)
        changed = base / "changed"
        changed.mkdir()
        for path in args.repo.iterdir():
            if path.is_file():
                (changed / path.name).write_bytes(path.read_bytes())
        with open(changed / "model_manager.py", "a") as handle:
            handle.write("\n# a code-only change\n")
        second = make_git_repo(changed, origin, message="code-only change")
        url = file_url(origin)
        code = snapshot(base / "code")
        if not args.skip_cold:
            cache = base / "uv-cache"
            results["cold"] = build(url, first, base / "registry-cold", {"UV_CACHE_DIR": str(cache)}, code)
        results["warm"] = build(url, first, base / "registry-warm", {}, code)
        results["code_only"] = build(url, second, base / "registry-warm", {}, code)
        online = {"FLOPS_UV_OFFLINE_FIRST": "0"}
        results["warm_online_resolution"] = build(url, first, base / "registry-online", online, code)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
