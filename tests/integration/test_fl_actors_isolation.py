"""Learners carry no MLflow: importing the learner side must not pull it in."""

from __future__ import annotations

import subprocess
import sys


def test_learner_side_does_not_import_mlflow() -> None:
    code = (
        "import sys\n"
        "import fl_actors.learner, fl_actors.client_app, fl_actors.rounds, fl_actors.strategies\n"
        "import fl_actors.server_app, fl_actors.tracking\n"  # mlflow is imported lazily even there
        "bad = sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
