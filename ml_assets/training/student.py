"""The student: a small MLP distilled from the teacher, cheap enough to serve per request.

It learns the teacher's soft probabilities (with a little weight on the true labels), so it
inherits the teacher's ranking without needing its trees. Serving runs `predict_numpy`, a
plain numpy forward pass of the same weights: no torch import on the request path. Its
logits are then temperature-scaled (`calibration`), fitted after distillation.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ml_assets.training.calibration import IDENTITY, Calibration, calibrate_student
from ml_assets.training.model_inputs import LABEL_COLUMN, ModelInputs, Rows
from ml_assets.training.preprocessing import StudentPreprocessor, fit_preprocessor
from ml_assets.training.teacher import TeacherModel, time_split

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "student_weights.npz"
SPEC_FILE = "student_spec.json"


@dataclass(frozen=True)
class StudentConfig:
    """Knobs of the distillation; `label_weight` is the share of the loss on true labels."""

    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 25
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    label_weight: float = 0.2
    min_category_count: int = 20
    num_threads: int = 2
    seed: int = 7


@dataclass
class StudentModel:
    """Weights plus the fitted preprocessing: everything serving needs, in numpy."""

    inputs: ModelInputs
    preprocessor: StudentPreprocessor
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight [out, in], bias [out]), float32
    info: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration = IDENTITY

    kind = "student"

    def features(self, rows: Rows) -> np.ndarray:
        return self.preprocessor.transform(self.inputs.arrays(rows))

    def logits_numpy(self, x: np.ndarray) -> np.ndarray:
        h = x
        for weight, bias in self.layers[:-1]:
            h = np.maximum(h @ weight.T + bias, 0.0)
        weight, bias = self.layers[-1]
        return (h @ weight.T + bias)[:, 0]

    def predict_numpy(self, rows: Rows) -> np.ndarray:
        """Fraud probability per row: the serving path (numpy only)."""
        return self.calibration.probabilities(self.logits_numpy(self.features(rows)))

    predict_proba = predict_numpy

    def to_torch(self) -> torch.nn.Sequential:
        """The same weights as a torch module (for training checks and benchmarks)."""
        import torch

        modules: list[torch.nn.Module] = []
        for i, (weight, bias) in enumerate(self.layers):
            linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weight))
                linear.bias.copy_(torch.from_numpy(bias))
            modules.append(linear)
            if i < len(self.layers) - 1:
                modules.append(torch.nn.ReLU())
        return torch.nn.Sequential(*modules).eval()

    def predict_torch(self, rows: Rows, module: torch.nn.Module | None = None) -> np.ndarray:
        import torch

        module = module or self.to_torch()
        with torch.inference_mode():
            logits = module(torch.from_numpy(self.features(rows)))[:, 0]
        return self.calibration.probabilities(logits.numpy())

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "preprocessor": self.preprocessor.to_dict(),
            "layers": len(self.layers),
            "info": self.info,
            "calibration": self.calibration.to_dict(),
        }

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, (weight, bias) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = weight, bias
        np.savez(directory / WEIGHTS_FILE, **arrays)
        (directory / SPEC_FILE).write_text(json.dumps(self.spec(), indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> StudentModel:
        spec = json.loads((directory / SPEC_FILE).read_text())
        with np.load(directory / WEIGHTS_FILE) as weights:
            layers = [
                (weights[f"w{i}"].astype(np.float32), weights[f"b{i}"].astype(np.float32))
                for i in range(spec["layers"])
            ]
        return cls(
            inputs=ModelInputs.from_dict(spec["inputs"]),
            preprocessor=StudentPreprocessor.from_dict(spec["preprocessor"]),
            layers=layers,
            info=spec.get("info", {}),
            calibration=Calibration.from_dict(spec.get("calibration")),
        )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def train_student(
    frame: pl.DataFrame,
    teacher: TeacherModel,
    config: StudentConfig | None = None,
    validation_days: int | None = None,
) -> StudentModel:
    """Distil `teacher` into an MLP on `frame`, keeping the epoch that best matches the
    teacher on the newest days (the same time split the teacher validated on), then
    calibrate it on those days' labels."""
    import torch

    config = config or StudentConfig()
    torch.manual_seed(config.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(config.num_threads, os.cpu_count() or 1)))
    try:
        days = validation_days or teacher.info.get("config", {}).get("validation_days", 2)
        train, valid = time_split(frame, days)
        inputs = teacher.inputs
        train_arrays = inputs.arrays(train)
        preprocessor = fit_preprocessor(inputs, train_arrays, config.min_category_count)
        x_train = torch.from_numpy(preprocessor.transform(train_arrays))
        soft_train = torch.from_numpy(
            teacher.predict_matrix(teacher.matrix(train_arrays)).astype(np.float32)
        )
        y_train = torch.from_numpy(train[LABEL_COLUMN].cast(pl.Float32).to_numpy().copy())
        valid_arrays = inputs.arrays(valid)
        x_valid = torch.from_numpy(preprocessor.transform(valid_arrays))
        soft_valid = torch.from_numpy(
            teacher.predict_matrix(teacher.matrix(valid_arrays)).astype(np.float32)
        )

        sizes = [preprocessor.width, *config.hidden, 1]
        modules: list[torch.nn.Module] = []
        for i in range(len(sizes) - 1):
            modules.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                modules.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*modules)
        with torch.no_grad():  # start at the base rate, not at 0.5
            net[-1].bias.fill_(float(_logit(np.array([soft_train.mean().item()]))[0]))
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        steps = config.epochs * math.ceil(len(x_train) / config.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=steps
        )
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        generator = torch.Generator().manual_seed(config.seed)
        best_loss, best_state, best_epoch = math.inf, None, 0
        for epoch in range(config.epochs):
            net.train()
            order = torch.randperm(len(x_train), generator=generator)
            for start in range(0, len(order), config.batch_size):
                idx = order[start : start + config.batch_size]
                logits = net(x_train[idx])[:, 0]
                loss = (1 - config.label_weight) * bce(logits, soft_train[idx])
                loss = loss + config.label_weight * bce(logits, y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
            net.eval()
            with torch.inference_mode():
                valid_loss = bce(net(x_valid)[:, 0], soft_valid).item()
            if valid_loss < best_loss:
                best_loss, best_epoch = valid_loss, epoch + 1
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        assert best_state is not None
        net.load_state_dict(best_state)
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        layers = [
            (m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears
        ]
    finally:
        torch.set_num_threads(previous_threads)
    student = StudentModel(
        inputs=inputs,
        preprocessor=preprocessor,
        layers=layers,
        info={
            "best_epoch": best_epoch,
            "validation_distillation_loss": best_loss,
            "train_rows": train.height,
            "validation_rows": valid.height,
            "config": asdict(config),
        },
    )
    return calibrate_student(student, valid, valid[LABEL_COLUMN].cast(pl.Float64).to_numpy())
