"""Where the registry's artifacts live, and moving that place with the data dir.

MLflow stores each artifact location absolutely in its database (the experiment's root, each
run's and logged model's folder, each model version's storage location). A data dir that is
copied or moved therefore still points at the old artifacts: serving would read them from
there and new runs would write into the old dir. `relocate_artifacts` rewrites those four
columns from the old root to the new one in one transaction (SQLite or PostgreSQL alike);
`ml-assets relocate` runs it, and the training side runs it itself when it finds that the
data dir has moved (`ensure_artifact_root`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Every column where MLflow 3 keeps an absolute artifact location.
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)
# The tail of the default artifact root (`Settings.mlflow_artifact_location`): a location
# ending so is the data dir's own, and moves with it.
DATA_DIR_TAIL = "/mlflow/artifacts"


@dataclass(frozen=True)
class Relocation:
    old_root: str
    new_root: str
    rows: int  # locations rewritten


def stored_artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """The artifact root `experiment` was created with; None before its first run."""
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    return None if found is None else found.artifact_location.rstrip("/")


def relocate_artifacts(tracking_uri: str, old_root: str, new_root: str) -> Relocation:
    """Rewrite every stored location under `old_root` to the same place under `new_root`.
    Idempotent; copy or move the artifacts themselves first."""
    import sqlalchemy as sa

    old, new = old_root.rstrip("/"), new_root.rstrip("/")
    if old == new:
        return Relocation(old, new, 0)
    engine = sa.create_engine(tracking_uri)
    rows = 0
    try:
        with engine.begin() as connection:  # one transaction: all locations move, or none
            for table, column in LOCATION_COLUMNS:
                # A prefix compare, not LIKE: paths hold `_`, a LIKE wildcard.
                statement = sa.text(
                    f"UPDATE {table} SET {column} = :new || substr({column}, :after) "
                    f"WHERE substr({column}, 1, :length) = :old "
                    f"AND (length({column}) = :length OR substr({column}, :after, 1) = '/')"
                )
                result = connection.execute(
                    statement, {"new": new, "old": old, "length": len(old), "after": len(old) + 1}
                )
                rows += result.rowcount
    finally:
        engine.dispose()
    return Relocation(old, new, rows)


def moved_with_data_dir(stored: str, configured: str) -> bool:
    """Whether `stored` and `configured` are both a data dir's own local artifact root, so
    the difference means the data dir was copied or moved (not a changed setting)."""
    return all(
        root.startswith("file://") and root.rstrip("/").endswith(DATA_DIR_TAIL)
        for root in (stored, configured)
    )


def ensure_artifact_root(tracking_uri: str, experiment: str, artifact_root: str) -> None:
    """Make `experiment`'s stored artifact root `artifact_root` before a run logs to it.

    A data dir that moved is relocated here, so a copy never writes into the original. Any
    other difference is a changed setting (e.g. artifacts moved to S3): MLflow would keep
    writing to the old root, so say what to do instead of guessing.
    """
    stored = stored_artifact_root(tracking_uri, experiment)
    configured = artifact_root.rstrip("/")
    if stored is None or stored == configured:
        return
    if moved_with_data_dir(stored, configured):
        relocate_artifacts(tracking_uri, stored, configured)
        return
    raise RuntimeError(
        f"MLflow experiment {experiment!r} in {tracking_uri} stores its artifacts at {stored},"
        f" but the settings say {configured} (ML_ASSETS_MLFLOW_ARTIFACTS_URL). Copy the "
        f"artifacts there and run `ml-assets relocate --from {stored}`, or set the variable "
        "back."
    )
