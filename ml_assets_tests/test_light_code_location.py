"""The code location loads without the heavy libraries. Every Dagster run process and every
step subprocess imports it, so a library imported at module level is paid by each of them
(about 10 s of CPU for torch, MLflow, Evidently, LightGBM, scikit-learn and matplotlib)."""

from ml_assets_tests.support.imports import import_fresh


def test_importing_the_code_location_leaves_the_heavy_libraries_unloaded() -> None:
    fresh = import_fresh("ml_assets.definitions")
    assert "dagster" in fresh.loaded  # the code location really was loaded
    assert fresh.heavy() == [], (
        f"`import ml_assets.definitions` loads {fresh.heavy()}; import them inside the "
        "functions that use them (see DESIGN.md, known pitfalls)"
    )
