"""The student as an MLflow pyfunc that MLflow's own tools load anywhere, without `ml_assets`.

`log_student` logs this file as the model's code ("models from code": MLflow runs the file,
nothing is pickled) and ships a copy of the student's own modules through `code_paths`,
renamed to a package of their own (`ship_student_code`). The model directory thus carries
every line it runs, and `mlflow.pyfunc.load_model` or `mlflow models serve` need only the
logged requirements, from any working directory. So this module imports nothing from
`ml_assets` at module level.

The shipped package is named after a hash of the code it holds: two versions with the same
code share one import, and a version with other code never runs a stale cached module.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import re
import warnings
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import numpy as np

STUDENT_ARTIFACT = "student"
# model_config key: the importable name of the shipped copy of `STUDENT_MODULE`.
STUDENT_MODULE_KEY = "student_module"
ROOT_PACKAGE = "ml_assets"
STUDENT_MODULE = f"{ROOT_PACKAGE}.training.student"
SHIPPED_PACKAGE_PREFIX = "fraud_student_code_"
_FROM_ROOT = re.compile(rf"^(\s*from\s+){ROOT_PACKAGE}(?=[.\s])", re.MULTILINE)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # `name` is an attribute, not a module
        return False


def _imported_modules(module: str) -> set[str]:
    """The `ml_assets` modules `module` imports anywhere in its file (module level, lazy and
    type-checking imports alike), with their parent packages (whose `__init__` runs too)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    package = module if spec.submodule_search_locations is not None else module.rpartition(".")[0]
    candidates = {module}
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.Import):
            candidates |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            candidates |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    found = set()
    for name in candidates:
        if (name == ROOT_PACKAGE or name.startswith(f"{ROOT_PACKAGE}.")) and _is_module(name):
            parts = name.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return found


def _closure(root: str) -> dict[str, Path]:
    """Every `ml_assets` module `root` needs, by name, with its source file."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imported_modules(name) - seen)
    files = {}
    for name in sorted(seen):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        files[name] = Path(spec.origin)
    return files


def _root_imports(source: str) -> set[str]:
    """Absolute imports of `ml_assets` modules left in `source`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] == ROOT_PACKAGE}


def ship_student_code(directory: Path) -> tuple[Path, str]:
    """Copy the student's module and every `ml_assets` module it imports into `directory`,
    as a package named after their content, imports rewritten to that name.

    Returns the package folder (for `code_paths`) and the shipped name of the student's
    module (for `model_config`). Raises if the copy would still import `ml_assets`.
    """
    files = _closure(STUDENT_MODULE)
    digest = hashlib.sha256()
    for name, path in files.items():
        digest.update(f"{name}\0{path.read_text()}\0".encode())
    package = f"{SHIPPED_PACKAGE_PREFIX}{digest.hexdigest()[:12]}"
    root = directory / package
    for name, path in files.items():
        parts = name.split(".")[1:]
        if path.name == "__init__.py":
            target = root.joinpath(*parts, "__init__.py")
        else:
            target = root.joinpath(*parts[:-1], f"{parts[-1]}.py")
        source = _FROM_ROOT.sub(rf"\g<1>{package}", path.read_text())
        left = _root_imports(source)
        if left:
            raise ValueError(
                f"{path} imports {sorted(left)} as `import {ROOT_PACKAGE}...`: the shipped copy"
                f" renames `from {ROOT_PACKAGE}... import` only, write the import that way"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    return root, f"{package}{STUDENT_MODULE.removeprefix(ROOT_PACKAGE)}"


# MLflow warns at class creation when `predict` has no type hints; they are left out on
# purpose, since MLflow would derive and enforce a schema from them.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)

    class StudentPyfunc(mlflow.pyfunc.PythonModel):
        """Loads `StudentModel` (from the code shipped with the model) and its artifacts,
        and returns fraud probabilities."""

        def load_context(self, context: Any) -> None:
            # Versions logged before the code was shipped (pickled) name no module.
            config = context.model_config or {}
            module = importlib.import_module(config.get(STUDENT_MODULE_KEY, STUDENT_MODULE))
            self.student = module.StudentModel.load(Path(context.artifacts[STUDENT_ARTIFACT]))

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            # Request rows legitimately vary (absent features are allowed): no schema.
            return np.asarray(self.student.predict_numpy(model_input))


if not __package__:  # run by MLflow as the model's code file, not imported from ml_assets
    mlflow.models.set_model(StudentPyfunc())
