"""Conda package specs (``conda.yaml`` ``dependencies:``) as PyPI requirements.

The Oakestra FLOps addon's repos carry MLflow's ``conda.yaml``, often with conda packages only
(``scikit-learn=1.4.2``) and no ``pip:`` list. FLOps installs from PyPI, so each conda spec is mapped:
``python`` and ``pip`` are dropped (the runtime brings its own), known name differences are renamed
(``pytorch`` → ``torch``), versions become PEP 440 pins (``=1.4.2`` → ``==1.4.2.*``), and packages that
exist only on conda (system libraries, CUDA toolkits) are reported by name: they cannot be installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement

# The interpreter and installer of a runtime are FLOps' own; cpuonly only selects conda's CPU build of torch.
DROPPED = frozenset({"python", "pip", "cpuonly"})
# Conda names whose PyPI distribution is called differently.
PYPI_NAMES = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "tensorflow-base": "tensorflow",
    "keras-base": "keras",
    "pyqt": "PyQt5",
    "tbb": "tbb",
}
# Conda packages with no PyPI counterpart a runtime could use: system libraries and toolchains.
CONDA_ONLY = frozenset(
    {
        "_libgcc_mutex",
        "_openmp_mutex",
        "blas",
        "bzip2",
        "ca-certificates",
        "cudatoolkit",
        "cudnn",
        "cuda-toolkit",
        "cuda-cudart",
        "icu",
        "ld_impl_linux-64",
        "libblas",
        "libcblas",
        "libffi",
        "libgcc",
        "libgcc-ng",
        "libgfortran-ng",
        "libgfortran5",
        "libgomp",
        "liblapack",
        "libopenblas",
        "libstdcxx-ng",
        "libuuid",
        "libzlib",
        "mkl-service",
        "nccl",
        "ncurses",
        "openblas",
        "openssl",
        "pytorch-cuda",
        "readline",
        "sqlite",
        "tk",
        "xz",
        "zlib",
    }
)
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?P<rest>.*)$")
_OPERATOR = re.compile(r"^(==|!=|<=|>=|~=|<|>)")


@dataclass
class CondaMapping:
    """The PyPI requirements of a conda list, what was dropped, and what cannot be mapped."""

    requirements: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unmappable: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # specs FLOps cannot read, with the reason


def _version(rest: str) -> str | None:
    """The PEP 440 specifier of a conda version part; None if it has none, ValueError if unreadable."""
    rest = rest.strip()
    if not rest:
        return None
    if "|" in rest:
        raise ValueError("alternatives ('|') are not supported")
    if _OPERATOR.match(rest):
        return rest.replace(" ", "")
    # "=1.4" is conda's fuzzy 1.4.*, "=1.4.2=build" drops the build; "1.4.2 py310_0" is version, build.
    version = rest[1:].split("=")[0].strip() if rest.startswith("=") else rest.split()[0]
    if not version:
        return None
    return f"=={version.rstrip('.*')}.*"


def map_conda_spec(spec: str) -> tuple[str, str | None]:
    """``(conda name, PyPI requirement or None if dropped)``; raises LookupError for a conda-only
    package and ValueError for a spec that cannot be read."""
    text = spec.split("::", 1)[-1].strip()  # channel prefix, e.g. conda-forge::numpy
    match = _SPEC.match(text)
    if match is None:
        raise ValueError("not a conda package spec")
    name = match["name"].lower()
    if name in DROPPED:
        return name, None
    if name in CONDA_ONLY:
        raise LookupError(name)
    version = _version(match["rest"])
    requirement = PYPI_NAMES.get(name, name) + (version or "")
    try:
        Requirement(requirement)
    except InvalidRequirement as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    return name, requirement


def map_conda_dependencies(specs: list[str]) -> CondaMapping:
    """Map every conda spec of a ``dependencies:`` list (the ``pip:`` entry is handled elsewhere)."""
    result = CondaMapping()
    for spec in specs:
        try:
            name, requirement = map_conda_spec(spec)
        except LookupError as exc:
            result.unmappable.append(str(exc.args[0]))
            continue
        except ValueError as exc:
            result.invalid.append(f"{spec!r} ({exc})")
            continue
        if requirement is None:
            result.dropped.append(name)
        else:
            result.requirements.append(requirement)
    return result
