"""Fuzz the manager API from its own OpenAPI schema with schemathesis (bounded): no 5xx, answers as documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite


def test_api_never_fails_on_any_input(suite: EmbeddedSuite, admin: FlopsClient) -> None:
    token = admin.issue_token("fuzzer")  # a customer, not admin: fuzzing must not reset the shared suite
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    out = subprocess.run(
        [
            st,
            "--no-color",
            "run",
            f"{suite.api_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "-H",
            f"Authorization: Bearer {token}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
