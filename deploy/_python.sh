# Sourced by the deploy/ scripts: runs the FLOps Python module behind them, from this checkout.
# FLOPS_PYTHON picks the interpreter (tests pass their own); else the checkout's .venv; else uv.
FLOPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flops_python() {
  if [ -n "${FLOPS_PYTHON:-}" ]; then
    (cd "$FLOPS_ROOT" && "$FLOPS_PYTHON" "$@")
  elif [ -x "$FLOPS_ROOT/.venv/bin/python" ]; then
    (cd "$FLOPS_ROOT" && "$FLOPS_ROOT/.venv/bin/python" "$@")
  else
    (cd "$FLOPS_ROOT" && uv run --frozen python "$@")
  fi
}
