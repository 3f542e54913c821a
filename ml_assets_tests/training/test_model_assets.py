"""Model assets through real materializations: training beats chance, lineage leads back to
the data, and every promotion gate blocks deployment when its metric misses its threshold.

One module-wide platform (12 landed days, data + features materialized, two training runs)
keeps the suite fast; `platform_for` and `TRAINING` are shared with the promotion tests.
Each test sets up the registry state it needs, so the tests hold in any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from ml_assets.automation.deployment import DEPLOYED_MODEL
from ml_assets.automation.promotion import GateNotPassedError, promote_candidate
from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.definitions import ASSETS, build_resources
from ml_assets.features.assets import ONLINE_FEATURES, TRAINING_SET
from ml_assets.features.registry import FEATURE_SETS
from ml_assets.resources import MlflowResource, Warehouse, table_name
from ml_assets.settings import Settings
from ml_assets.training.assets import (
    MODEL_EVALUATION,
    STUDENT_MODEL,
    TEACHER_MODEL,
    GateConfig,
    StudentTrainingConfig,
    TeacherTrainingConfig,
)
from ml_assets.training.gates import (
    CHAMPION_REGRESSION,
    GATE_NAMES,
    MAX_ECE,
    MIN_AUC,
    SLICE_AUC_FLOOR,
    STUDENT_TEACHER_RATIO,
)
from ml_assets.training.mlflow_registry import (
    CHAMPION,
    STUDENT_MODEL_NAME,
    recover_lineage,
    resolve_version,
    set_alias,
)
from ml_assets.training.window import ModelRef, choose_partitions

pytestmark = pytest.mark.xdist_group("model_assets")

START = date(2026, 3, 1)
DAYS = 12
ROWS_PER_DAY = 3_000
WINDOW_DAYS = 8
# Small on purpose: the suite shares two cores; the data's signal does not need more.
TEACHER = TeacherTrainingConfig(
    window_days=WINDOW_DAYS, holdout_days=2, validation_days=2, num_boost_round=300
)
STUDENT = StudentTrainingConfig(epochs=3, max_rows=30_000)
TRAINING = dg.RunConfig(ops={TEACHER_MODEL.path[-1]: TEACHER, STUDENT_MODEL.path[-1]: STUDENT})
WORSE_STUDENT = StudentTrainingConfig(hidden=[2], epochs=1, max_rows=30_000)
EARLIER = dg.RunConfig(ops={TEACHER_MODEL.path[-1]: TEACHER, STUDENT_MODEL.path[-1]: WORSE_STUDENT})
# Floors far below what this data reaches (about 0.94), far above chance (0.5).
AUC_FLOOR = 0.75
BAYES_TOLERANCE = 0.02
DATA_AND_FEATURES = dg.AssetSelection.groups("data", "features") - dg.AssetSelection.assets(
    ONLINE_FEATURES
)


@dataclass(frozen=True)
class Platform:
    """A temporary data dir and Dagster instance with landed days and built features."""

    settings: Settings
    instance: dg.DagsterInstance

    @property
    def tracking_uri(self) -> str:
        return MlflowResource(directory=str(self.settings.mlflow_dir)).tracking_uri

    @property
    def mlflow(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def materialize(self, selection, run_config=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            selection=selection,
            run_config=run_config or {},
            resources=build_resources(self.settings),
            instance=self.instance,
            raise_on_error=False,
        )

    def evaluate(self, gates: GateConfig | None = None, deploy: bool = True):
        """Re-evaluate the latest candidate (and try to deploy it) under `gates`."""
        selection = [MODEL_EVALUATION, DEPLOYED_MODEL] if deploy else [MODEL_EVALUATION]
        config = dg.RunConfig(ops={MODEL_EVALUATION.path[-1]: gates or GateConfig()})
        return self.materialize(selection, config)

    def champion(self) -> str | None:
        return resolve_version(self.tracking_uri, STUDENT_MODEL_NAME, CHAMPION)

    def make_champion(self, version: str | None) -> None:
        """Set up who serves (no gates: this is the test's starting state, not a promotion)."""
        if version is None:
            self.mlflow.delete_registered_model_alias(STUDENT_MODEL_NAME, CHAMPION)
        else:
            set_alias(self.tracking_uri, STUDENT_MODEL_NAME, CHAMPION, version)


@contextmanager
def platform_for(home: Path) -> Iterator[Platform]:
    """Land `DAYS` generated days under `home` and materialize data and features for each."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ML_ASSETS_HOME", str(home / "data"))
        env.setenv("ML_ASSETS_TRANSACTIONS_PER_DAY", str(ROWS_PER_DAY))
        env.delenv("ML_ASSETS_ENDPOINTS", raising=False)  # no endpoint to notify
        settings = Settings.from_env()
        (home / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            platform = Platform(settings, instance)
            generator = GeneratorConfig(transactions_per_day=ROWS_PER_DAY)
            list(land_days(settings.landing_dir, START, DAYS, generator))
            for offset in range(DAYS):
                result = dg.materialize(
                    ASSETS,
                    selection=DATA_AND_FEATURES,
                    partition_key=(START + timedelta(days=offset)).isoformat(),
                    resources=build_resources(settings),
                    instance=instance,
                )
                assert result.success
            yield platform


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def evaluation_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.asset_materializations_for_node(MODEL_EVALUATION.path[-1])
    return {k: v.value for k, v in event.metadata.items()}


def evaluated(result: dg.ExecuteInProcessResult) -> ModelRef:
    """The candidate a model_evaluation run judged (its value is stored before its checks)."""
    return result.output_for_node(MODEL_EVALUATION.path[-1])["candidate"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_for(tmp_path_factory.mktemp("model_assets")) as built:
        yield built


@pytest.fixture(scope="module")
def earlier(platform: Platform) -> dg.ExecuteInProcessResult:
    """The teacher, and an earlier student too small to keep up (hidden [2], one epoch): a
    registered version tests can make champion, so the candidate has one to compare with."""
    result = platform.materialize([TEACHER_MODEL, STUDENT_MODEL], EARLIER)
    assert result.success, "the first training run failed; see its step failure events"
    return result


@pytest.fixture(scope="module")
def training(platform: Platform, earlier) -> dg.ExecuteInProcessResult:
    """The candidate: the student distilled and evaluated in one run, as a user launches it.
    Nothing later re-materializes student_model, so it stays the candidate of every test."""
    config = dg.RunConfig(ops={STUDENT_MODEL.path[-1]: STUDENT})
    result = platform.materialize([STUDENT_MODEL, MODEL_EVALUATION], config)
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
    artifacts = {a.path: a for a in platform.mlflow.list_artifacts(student.run_id, "evaluation")}
    for name in ("roc_pr.png", "calibration.png", "slices.csv"):
        assert artifacts[f"evaluation/{name}"].file_size > 0, name


def test_registered_student_leads_back_to_its_window_and_features(
    platform, earlier, training, student
):
    lineage = recover_lineage(STUDENT_MODEL_NAME, student.version, platform.tracking_uri)

    warehouse = Warehouse(root=str(platform.settings.warehouse_dir))
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
    assert min_auc.description == (
        f"min_auc: student AUC {auc:.4f} is {0.999 - auc:.4f} below the floor 0.9990"
    )
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
    MAX_ECE: (GateConfig(max_ece=1e-6), "above"),
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
