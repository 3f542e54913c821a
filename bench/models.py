"""Teacher vs student: quality against the reachable ceiling, and predict latency.

Generates its own data, trains both models with their default configs, then reports on
held-out days: AUCs beside the Bayes AUC, and p50/p99 latency at batch 1 and 1k for the
teacher (LightGBM), the student in torch and the student's numpy forward (what serving
runs). "core" times the model on prepared inputs; "e2e" includes building the inputs
from a request dict / polars frame, as `predict_proba` does.

    python bench/models.py [--days 14] [--rows-per-day 20000] [--holdout-days 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml_assets.training.evaluation import LatencyStats, bayes_auc, measure_latency, roc_auc  # noqa: E402
from ml_assets.training.model_inputs import ModelInputs  # noqa: E402
from ml_assets.training.student import StudentConfig, train_student  # noqa: E402
from ml_assets.training.synthetic import labelled_frame  # noqa: E402
from ml_assets.training.teacher import TeacherConfig, time_split, train_teacher  # noqa: E402

TARGET_STUDENT_AUC_RATIO = 0.98
TARGET_TEACHER_BAYES_GAP = 0.02
TARGET_SPEEDUP = 5.0


def _line(name: str, single: LatencyStats, batch: LatencyStats) -> str:
    return (
        f"  {name:<26} b1 p50 {single.p50_ms * 1e3:8.1f} us  p99 {single.p99_ms * 1e3:8.1f} us"
        f" | b1k p50 {batch.p50_ms:7.2f} ms  p99 {batch.p99_ms:7.2f} ms"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2026-02-02")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--holdout-days", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=StudentConfig.epochs)
    parser.add_argument("--calls", type=int, default=2000, help="single-row calls per model")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    frame = labelled_frame(
        date.fromisoformat(args.start), args.days, transactions_per_day=args.rows_per_day
    )
    train, test = time_split(frame, args.holdout_days)
    print(
        f"data: {frame.height} labelled rows over {args.days} days "
        f"({test.height} held out), fraud rate {frame['is_fraud'].mean():.4f}, "
        f"{time.perf_counter() - t0:.1f}s"
    )
    inputs = ModelInputs.from_frame(frame)
    t0 = time.perf_counter()
    teacher = train_teacher(train, inputs, TeacherConfig())
    print(f"teacher: {teacher.info['best_iteration']} trees, {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    student = train_student(train, teacher, replace(StudentConfig(), epochs=args.epochs))
    print(f"student: best epoch {student.info['best_epoch']}, {time.perf_counter() - t0:.1f}s")

    y = test["is_fraud"].to_numpy()
    teacher_auc = roc_auc(y, teacher.predict_proba(test))
    student_auc = roc_auc(y, student.predict_numpy(test))
    bayes = bayes_auc(test)
    assert teacher_auc and student_auc and bayes
    print("\nheld-out quality")
    print(f"  bayes AUC   {bayes:.4f}")
    print(f"  teacher AUC {teacher_auc:.4f}  (gap to bayes {bayes - teacher_auc:+.4f})")
    print(f"  student AUC {student_auc:.4f}  (ratio to teacher {student_auc / teacher_auc:.4f})")

    row = test.row(0, named=True)
    batch = test.head(1000)
    t_row, t_batch = teacher.matrix(inputs.arrays(row)), teacher.matrix(inputs.arrays(batch))
    s_row, s_batch = student.features(row), student.features(batch)
    module = student.to_torch()
    torch_row, torch_batch = torch.from_numpy(s_row), torch.from_numpy(s_batch)

    def torch_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.sigmoid(module(x))

    calls, batch_calls = args.calls, max(20, args.calls // 20)
    results = {
        "teacher core (lightgbm)": (
            measure_latency(teacher.predict_matrix, t_row, calls),
            measure_latency(teacher.predict_matrix, t_batch, batch_calls),
        ),
        "student core (torch)": (
            measure_latency(torch_forward, torch_row, calls),
            measure_latency(torch_forward, torch_batch, batch_calls),
        ),
        "student core (numpy)": (
            measure_latency(student.logits_numpy, s_row, calls),
            measure_latency(student.logits_numpy, s_batch, batch_calls),
        ),
        "teacher e2e predict_proba": (
            measure_latency(teacher.predict_proba, row, calls),
            measure_latency(teacher.predict_proba, batch, batch_calls),
        ),
        "student e2e predict_proba": (
            measure_latency(student.predict_proba, row, calls),
            measure_latency(student.predict_proba, batch, batch_calls),
        ),
    }
    print("\nlatency (p50 / p99)")
    for name, (single, many) in results.items():
        print(_line(name, single, many))

    def speedup(slow: str, fast: str, index: int) -> float:
        return results[slow][index].p50_ms / results[fast][index].p50_ms

    print("\nagainst targets")
    ratio = student_auc / teacher_auc
    print(
        f"  [{_verdict(ratio >= TARGET_STUDENT_AUC_RATIO)}] student AUC / teacher AUC "
        f"{ratio:.4f} >= {TARGET_STUDENT_AUC_RATIO}"
    )
    gap = bayes - teacher_auc
    print(
        f"  [{_verdict(gap <= TARGET_TEACHER_BAYES_GAP)}] teacher within "
        f"{TARGET_TEACHER_BAYES_GAP} of bayes: gap {gap:.4f}"
    )
    for label, slow, fast in (
        ("core numpy", "teacher core (lightgbm)", "student core (numpy)"),
        ("core torch", "teacher core (lightgbm)", "student core (torch)"),
        ("e2e", "teacher e2e predict_proba", "student e2e predict_proba"),
    ):
        for index, size in ((0, "b1"), (1, "b1k")):
            x = speedup(slow, fast, index)
            print(
                f"  [{_verdict(x >= TARGET_SPEEDUP)}] student faster than teacher, {label} "
                f"{size}: {x:.1f}x (target {TARGET_SPEEDUP:.0f}x)"
            )


if __name__ == "__main__":
    main()
