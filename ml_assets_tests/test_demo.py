"""The demo's plan covers every asset once, in the order data flows."""

from ml_assets.atomic_files import write_text_atomically
from ml_assets.definitions import defs
from ml_assets.demo import _stages, drift_summary
from ml_assets.monitoring.assets import PREDICTION_DRIFT, SCORED_TRANSACTIONS


def test_stages_cover_every_materializable_asset_once():
    daily, models, monitoring, rag = _stages(defs)
    graph = defs.resolve_asset_graph()
    planned = [*daily, *models, *(k for stage in monitoring for k in stage), *rag]
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assert sorted(planned) == sorted(materializable)
    # Prediction drift reads the batch scores of earlier days: every day is scored first.
    assert SCORED_TRANSACTIONS in monitoring[0] and PREDICTION_DRIFT in monitoring[1]
    assert all(graph.get(k).partitions_def is None for k in models)
    assert rag and all(graph.get(k).group_name == "rag" for k in rag)


def test_drift_summary_counts_scenario_clean_and_warm_up_days(tmp_path):
    for day, drifted in (("2026-03-01", True), ("2026-03-02", False), ("2026-03-03", True)):
        write_text_atomically(
            tmp_path / "drift" / f"{day}.json",
            f'{{"day": "{day}", "dataset_drift": {str(drifted).lower()}}}',
        )
    summary = drift_summary(tmp_path, {"2026-03-03"}, {"2026-03-01"})
    assert summary == "drift flagged on 1/1 scenario days, 0/1 clean days, and 1/1 warm-up days"
