"""Where the RAG assets keep their files under the data dir, and the serving parameters the
evaluation chose: the one place both the assets and the endpoint read these names from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ml_assets.atomic_files import write_text_atomically


def rag_dir(home: Path) -> Path:
    return Path(home) / "rag"


def index_path(home: Path) -> Path:
    return rag_dir(home) / "index.duckdb"


def serving_params_path(home: Path) -> Path:
    return rag_dir(home) / "serving_params.json"


@dataclass(frozen=True)
class ServingParams:
    """What `answer_evaluation` measured as best for the index it evaluated."""

    index_version: str = ""
    retriever: str = "hybrid"
    k: int = 5
    min_similarity: float = 0.45  # extractive generator's abstention cut
    cache_threshold: float = 0.95  # cosine at or above which a cached answer is reused

    def write(self, home: Path) -> Path:
        return write_text_atomically(serving_params_path(home), json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, home: Path) -> ServingParams:
        path = serving_params_path(home)
        return cls(**json.loads(path.read_text())) if path.is_file() else cls()
