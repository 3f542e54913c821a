"""Model assets through real materializations: training beats chance, lineage leads back to
the data, and every promotion gate blocks deployment when its metric misses its threshold.

One module-wide platform (`support.platforms`: 12 landed days, data + features materialized)
and two training runs keep the suite fast. Each test sets up the registry state it needs, so
the tests hold in any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest

from ml_assets.features.assets import TRAINING_SET
from ml_assets.features.registry import FEATURE_SETS
from ml_assets.resources import WarehouseReader, table_name
from ml_assets.training.assets import (
    MODEL_EVALUATION,
    STUDENT_MODEL,
    TEACHER_MODEL,
    GateConfig,
    StudentTrainingConfig,
)
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.gates import (
    CHAMPION_REGRESSION,
    GATE_NAMES,
    MAX_ECE,
    MIN_AUC,
    SLICE_AUC_FLOOR,
    STUDENT_TEACHER_RATIO,
)
from ml_assets.training.model_contracts import ModelRef
from ml_assets.training.registry_aliases import GateNotPassedError, promote_candidate
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, recover_lineage
from ml_assets.training.window import choose_partitions
from ml_assets_tests.support.platforms import (
    DAYS,
    START,
    STUDENT,
    TEACHER,
    WINDOW_DAYS,
    Platform,
    evaluated,
    materialized,
    platform_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("model_assets")]

WORSE_STUDENT = StudentTrainingConfig(hidden=[2], epochs=1, max_rows=30_000)
EARLIER = dg.RunConfig(ops={TEACHER_MODEL.path[-1]: TEACHER, STUDENT_MODEL.path[-1]: WORSE_STUDENT})
# Floors far below what this data reaches (about 0.94), far above chance (0.5).
AUC_FLOOR = 0.75
BAYES_TOLERANCE = 0.02


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def evaluation_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.asset_materializations_for_node(MODEL_EVALUATION.path[-1])
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_for(tmp_path_factory.mktemp("model_assets")) as built:
        yield built


@pytest.fixture(scope="module")
def earlier(platform: Platform) -> dg.ExecuteInProcessResult:
    """The teacher, and an earlier student too small to keep up (hidden [2], one epoch): a
    registered version tests can make champion, so the candidate has one to compare with."""
    result = platform.materialize([TEACHER_MODEL, STUDENT_MODEL], run_config=EARLIER)
    assert result.success, "the first training run failed; see its step failure events"
    return result


@pytest.fixture(scope="module")
def training(platform: Platform, earlier) -> dg.ExecuteInProcessResult:
    """The candidate: the student distilled and evaluated in one run, as a user launches it.
    Nothing later re-materializes student_model, so it stays the candidate of every test."""
    config = dg.RunConfig(ops={STUDENT_MODEL.path[-1]: STUDENT})
    result = platform.materialize([STUDENT_MODEL, MODEL_EVALUATION], run_config=config)
    assert result.success, "the training run failed; see its step failure events"
    return result


@pytest.fixture(scope="module")
def student(training: dg.ExecuteInProcessResult) -> ModelRef:
    return training.output_for_node(STUDENT_MODEL.path[-1])


@pytest.fixture(scope="module")
def worse_student(earlier: dg.ExecuteInProcessResult) -> ModelRef:
    return earlier.output_for_node(STUDENT_MODEL.path[-1])


def test_training_beats_chance_and_passes_every_gate(platform, training, student):
    metadata = evaluation_metadata(training)
    assert metadata["candidate"] == f"{STUDENT_MODEL_NAME} v{student.version}"
    assert metadata["student_auc"] > AUC_FLOOR and metadata["teacher_auc"] > AUC_FLOOR
    # The generator's true probabilities rank best (up to sampling noise on the held-out rows).
    best = max(metadata["student_auc"], metadata["teacher_auc"])
    assert metadata["bayes_auc"] >= best - BAYES_TOLERANCE
    assert metadata["gates_passed"] is True

    gates = checks(training)
    assert set(gates) == set(GATE_NAMES)
    assert all(g.passed for g in gates.values()), [g.description for g in gates.values()]

    run = platform.mlflow.get_run(student.run_id)
    assert run.data.metrics["eval_student_roc_auc"] == pytest.approx(metadata["student_auc"])
    # ECE before and after calibration: on the calibration days (student run and asset) and
    # on the held-out days (evaluation), in MLflow and in the metadata alike.
    (event,) = training.asset_materializations_for_node(STUDENT_MODEL.path[-1])
    for key in ("calibration_temperature", "calibration_ece_before", "calibration_ece_after"):
        assert run.data.metrics[key] == pytest.approx(event.metadata[key].value, abs=1e-5)
    for key in ("student_ece_uncalibrated", "student_ece_calibrated"):
        logged = run.data.metrics[f"eval_{key}"]
        assert logged == pytest.approx(metadata[f"holdout_{key}"], abs=1e-5)
    assert metadata["holdout_student_ece_calibrated"] == pytest.approx(
        run.data.metrics["eval_student_ece"], abs=1e-5
    )
    assert "bootstrap" in metadata["gate_rule"]
    artifacts = {a.path: a for a in platform.mlflow.list_artifacts(student.run_id, "evaluation")}
    for name in ("roc_pr.png", "calibration.png", "slices.csv"):
        assert artifacts[f"evaluation/{name}"].file_size > 0, name


def test_registered_student_leads_back_to_its_window_and_features(
    platform, earlier, training, student
):
    lineage = recover_lineage(STUDENT_MODEL_NAME, student.version, platform.tracking_uri)

    warehouse = WarehouseReader(root=str(platform.settings.warehouse_dir))
    available = warehouse.partitions(table_name(TRAINING_SET))
    window = choose_partitions(available, WINDOW_DAYS)
    newest = [(START + timedelta(days=d)).isoformat() for d in range(DAYS - WINDOW_DAYS, DAYS)]
    assert list(lineage.training_partitions) == window == newest
    assert (lineage.window_start, lineage.window_end) == (newest[0], newest[-1])
    assert lineage.feature_versions == {
        f.column: f.version for fs in FEATURE_SETS.values() for f in fs.features
    }

    # Each partition's data version is the one Dagster recorded when it wrote that partition.
    assert set(lineage.data_versions) == set(window)
    for day in window:
        (record,) = platform.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=TRAINING_SET, asset_partitions=[day]), limit=1
        ).records
        recorded = record.asset_materialization.metadata["data_version"].value
        assert lineage.data_versions[day] == recorded, day

    teacher = earlier.output_for_node(TEACHER_MODEL.path[-1])
    assert lineage.teacher_version == teacher.version
    for model, run in ((student, training), (teacher, earlier)):
        tags = platform.mlflow.get_run(model.run_id).data.tags
        assert tags["dagster.run_id"] == run.run_id


def test_failing_gate_blocks_deployment_and_keeps_the_champion(platform, student, worse_student):
    platform.make_champion(worse_student.version)
    result = platform.evaluate(GateConfig(min_auc=0.999))

    assert not result.success and evaluated(result).version == student.version
    min_auc = checks(result)[MIN_AUC]
    auc = evaluation_metadata(result)["student_auc"]
    assert not min_auc.passed
    assert min_auc.description.startswith(
        f"min_auc: student AUC {auc:.4f} is {0.999 - auc:.4f} below the floor 0.9990; "
        "upper 95% bound"
    )
    assert min_auc.metadata["bound"].value < 0.999
    assert DEPLOYED_MODEL not in materialized(result)
    assert platform.champion() == worse_student.version

    # The evaluation recorded the verdict on the run, so the registry refuses it too ...
    assert platform.mlflow.get_run(student.run_id).data.tags["gates_passed"] == "False"
    with pytest.raises(GateNotPassedError, match=f"{STUDENT_MODEL_NAME} v{student.version}"):
        promote_candidate(platform.tracking_uri, STUDENT_MODEL_NAME, student.version, "test")
    # ... and so does deployed_model launched on its own, past the blocking checks.
    alone = platform.materialize([DEPLOYED_MODEL])
    assert not alone.success and DEPLOYED_MODEL not in materialized(alone)
    (failure,) = alone.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "failed its gates" in message and "min_auc" in message
    assert platform.champion() == worse_student.version


# Each gate pushed past what the candidate reaches, the others left where it passes them.
# champion_regression is judged against the earlier, much worse student as champion, with a
# limit that demands the candidate beat it by 0.5 AUC (it beats it by about 0.2).
# ("below": the gate's value must reach its threshold; "above": it must stay under it.)
FORCED = {
    MIN_AUC: (GateConfig(min_auc=0.999), "below"),
    STUDENT_TEACHER_RATIO: (GateConfig(min_student_teacher_auc_ratio=1.5), "below"),
    SLICE_AUC_FLOOR: (GateConfig(slice_auc_floor=0.999), "below"),
    # The ECE bound is bias-corrected: for a calibrated student its lower bound can be 0.
    MAX_ECE: (GateConfig(max_ece=-0.001), "above"),
    CHAMPION_REGRESSION: (GateConfig(max_regression_vs_champion=-0.5), "above"),
}


@pytest.mark.parametrize("gate", GATE_NAMES)
def test_each_gate_fails_when_its_metric_misses(platform, student, worse_student, gate):
    gates, side = FORCED[gate]
    platform.make_champion(worse_student.version)

    result = platform.evaluate(gates)

    assert evaluated(result).version == student.version
    verdicts = checks(result)
    assert {name for name, c in verdicts.items() if not c.passed} == {gate}
    failed = verdicts[gate]
    assert failed.description.startswith(f"{gate}:")
    value = failed.metadata["value"].value
    threshold = failed.metadata["threshold"].value
    assert (value < threshold) if side == "below" else (value > threshold)
    metadata = evaluation_metadata(result)
    assert metadata["gates_passed"] is False
    assert metadata["champion_compared"] == worse_student.version
    assert DEPLOYED_MODEL not in materialized(result)
    assert platform.champion() == worse_student.version
