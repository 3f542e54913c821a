"""The teacher: a LightGBM classifier sized for accuracy, trained on older days and
early-stopped on newer ones, so its validation score says how it does on the future.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ml_assets.training.model_inputs import (
    LABEL_COLUMN,
    TIME_COLUMN,
    InputArrays,
    ModelInputs,
    Rows,
    encode_categories,
    fit_vocabulary,
)

if TYPE_CHECKING:
    import lightgbm as lgb

MODEL_FILE = "teacher.txt"
SPEC_FILE = "teacher_spec.json"
# Below this many rows one thread beats a pool: thread start-up costs more than the trees.
SMALL_BATCH_ROWS = 64


@dataclass(frozen=True)
class TeacherConfig:
    """Knobs of the teacher; defaults favour accuracy, early stopping picks the size."""

    num_boost_round: int = 3000
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    cat_smooth: float = 10.0
    early_stopping_rounds: int = 150
    validation_days: int = 2
    min_category_count: int = 20
    num_threads: int = 2
    seed: int = 7

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": ["binary_logloss", "auc"],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": self.cat_smooth,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }


def time_split(
    frame: pl.DataFrame, validation_days: int, time_column: str = TIME_COLUMN
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Older days for fitting, the newest `validation_days` days for validation.

    Never a random split: rows of one day share bursts and drifts, and a random split
    would let the model peek at the period it is judged on.
    """
    days = frame[time_column].dt.date().unique().sort().to_list()
    if len(days) <= validation_days:
        raise ValueError(
            f"training frame spans {len(days)} day(s) but {validation_days} validation day(s)"
            " plus at least one training day are needed; widen the training window"
        )
    cutoff = days[-validation_days]
    is_valid = pl.col(time_column).dt.date() >= cutoff
    return frame.filter(~is_valid), frame.filter(is_valid)


def _days(frame: pl.DataFrame) -> list[str]:
    return [d.isoformat() for d in frame[TIME_COLUMN].dt.date().unique().sort().to_list()]


def _check_label(frame: pl.DataFrame, what: str) -> np.ndarray:
    if LABEL_COLUMN not in frame.columns:
        raise ValueError(f"{what} has no '{LABEL_COLUMN}' column; train on labelled rows")
    labels = frame[LABEL_COLUMN].cast(pl.Float64)
    if labels.null_count():
        raise ValueError(f"{what} has {labels.null_count()} unlabelled rows; drop them first")
    values = labels.to_numpy()
    if values.min() == values.max():
        raise ValueError(f"{what} holds only one class ({values[0]:.0f}); widen the window")
    return values


@dataclass
class TeacherModel:
    """A trained teacher with everything needed to predict: booster, inputs, vocabularies."""

    booster: lgb.Booster
    inputs: ModelInputs
    vocabularies: dict[str, list[str]]
    info: dict[str, Any] = field(default_factory=dict)
    num_threads: int = 2

    kind = "teacher"

    @property
    def feature_names(self) -> list[str]:
        return [*self.inputs.numeric, *self.inputs.categorical]

    def matrix(self, arrays: InputArrays) -> np.ndarray:
        codes = [
            encode_categories(values, self.vocabularies[name])
            for name, values in zip(self.inputs.categorical, arrays.categorical, strict=True)
        ]
        return np.column_stack([arrays.numeric, *codes]) if codes else arrays.numeric

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        threads = 1 if matrix.shape[0] <= SMALL_BATCH_ROWS else self.num_threads
        return self.booster.predict(matrix, num_threads=threads)

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """Fraud probability per row of a frame, one request dict or a list of them."""
        return self.predict_matrix(self.matrix(self.inputs.arrays(rows)))

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / MODEL_FILE))
        (directory / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))
        return directory

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "vocabularies": self.vocabularies,
            "info": self.info,
        }

    @classmethod
    def from_booster(cls, booster: lgb.Booster, spec: dict[str, Any]) -> TeacherModel:
        return cls(
            booster=booster,
            inputs=ModelInputs.from_dict(spec["inputs"]),
            vocabularies=spec["vocabularies"],
            info=spec.get("info", {}),
        )

    @classmethod
    def load(cls, directory: Path) -> TeacherModel:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        return cls.from_booster(booster, json.loads((directory / SPEC_FILE).read_text()))


def train_teacher(
    frame: pl.DataFrame, inputs: ModelInputs, config: TeacherConfig | None = None
) -> TeacherModel:
    """Fit the teacher on all but the newest days, early-stopping on those days."""
    import lightgbm as lgb

    config = config or TeacherConfig()
    train, valid = time_split(frame, config.validation_days)
    y_train = _check_label(train, "training days")
    y_valid = _check_label(valid, "validation days")
    train_arrays = inputs.arrays(train)
    vocabularies = {
        name: fit_vocabulary(values, config.min_category_count)
        for name, values in zip(inputs.categorical, train_arrays.categorical, strict=True)
    }
    model = TeacherModel(
        booster=None,  # type: ignore[arg-type]  # set below, once trained
        inputs=inputs,
        vocabularies=vocabularies,
        num_threads=config.num_threads,
    )
    names = model.feature_names
    categorical = list(range(len(inputs.numeric), len(names)))
    params = config.lightgbm_params()
    train_set = lgb.Dataset(
        model.matrix(train_arrays),
        label=y_train,
        feature_name=names,
        categorical_feature=categorical,
        params={"verbose": -1},
    )
    valid_set = lgb.Dataset(model.matrix(inputs.arrays(valid)), label=y_valid, reference=train_set)
    evals: dict[str, Any] = {}
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            # Log loss is the smoother stopping signal: AUC on a few hundred frauds is noisy.
            lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(evals),
        ],
    )
    best = booster.best_iteration or config.num_boost_round
    # Keep only the trees early stopping chose, so every later predict uses them.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    model.booster = booster
    model.info = {
        "best_iteration": best,
        "validation_auc": float(evals["validation"]["auc"][best - 1]),
        "validation_logloss": float(evals["validation"]["binary_logloss"][best - 1]),
        "train_days": _days(train),
        "validation_days": _days(valid),
        "train_rows": train.height,
        "validation_rows": valid.height,
        "config": asdict(config),
        "trained_on": date.today().isoformat(),
    }
    return model
