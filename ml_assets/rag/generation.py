"""Answers from retrieved chunks, with citations. Pluggable: the default is extractive and
needs no LLM (the sentences of the context closest to the question, each cited by chunk id);
with ML_ASSETS_LLM_URL set, an OpenAI-compatible chat endpoint writes the answer from the
same context. Both abstain when the context does not answer the question."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ml_assets.rag.retrieval import Hit
from ml_assets.rag.sentences import SentenceBank, chunk_body, split_sentences

ABSTAIN = "The knowledge base does not answer this question."
CITED = re.compile(r"\[([^\]\s]+#\d+)\]")


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[str]
    abstained: bool
    support: float = 0.0  # best question-sentence similarity seen (extractive)
    judge: dict = field(default_factory=dict)


class Generator(Protocol):
    name: str

    def answer(self, question: str, vector: np.ndarray, hits: list[Hit]) -> Answer: ...


class ExtractiveGenerator:
    """Up to `max_sentences` sentences of the context, best first, each at least
    `min_similarity` (cosine) to the question; none above it means abstain. The threshold
    is chosen on the eval set (answerable vs unanswerable) by `answer_evaluation`."""

    name = "extractive"

    def __init__(self, bank: SentenceBank, min_similarity: float = 0.45,
                 max_sentences: int = 2) -> None:  # fmt: skip
        self.bank = bank
        self.min_similarity = min_similarity
        self.max_sentences = max_sentences

    def answer(self, question: str, vector: np.ndarray, hits: list[Hit]) -> Answer:
        pairs = [
            (s, h.chunk_id) for h in hits for s in split_sentences(chunk_body(h.text, h.heading))
        ]
        if not pairs:
            return Answer(ABSTAIN, [], True)
        similarity = self.bank.embed([s for s, _ in pairs]) @ vector
        order = np.argsort(-similarity, kind="stable")
        best = float(similarity[order[0]])
        chosen = [i for i in order[: self.max_sentences] if similarity[i] >= self.min_similarity]
        if not chosen:
            return Answer(ABSTAIN, [], True, best)
        text = " ".join(f"{pairs[i][0]} [{pairs[i][1]}]" for i in chosen)
        return Answer(text, list(dict.fromkeys(pairs[i][1] for i in chosen)), False, best)


SYSTEM_PROMPT = (
    "You answer questions of fraud reviewers from the context passages only. Cite each "
    "passage you use by its id in square brackets, e.g. [policy-card-testing#1]. If the "
    "context does not answer the question, reply exactly: " + ABSTAIN
)


class ChatCompletionsClient:
    """A minimal OpenAI-compatible client (POST {base_url}/chat/completions)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout_s: float = 30.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s

    def complete(self, system: str, user: str) -> str:
        import httpx

        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": user}]}  # fmt: skip
        response = httpx.post(self.url, json=body, headers=self.headers, timeout=self.timeout_s)
        if response.status_code != 200:
            raise RuntimeError(
                f"LLM endpoint {self.url} answered {response.status_code}: "
                f"{response.text[:200]} (check ML_ASSETS_LLM_URL / ML_ASSETS_LLM_MODEL)"
            )
        return str(response.json()["choices"][0]["message"]["content"]).strip()


def context_prompt(question: str, hits: list[Hit]) -> str:
    passages = "\n\n".join(f"[{h.chunk_id}]\n{h.text}" for h in hits)
    return f"Context:\n{passages}\n\nQuestion: {question}"


class LlmGenerator:
    name = "llm"

    def __init__(self, client: ChatCompletionsClient) -> None:
        self.client = client

    def answer(self, question: str, vector: np.ndarray, hits: list[Hit]) -> Answer:
        text = self.client.complete(SYSTEM_PROMPT, context_prompt(question, hits))
        known = {h.chunk_id for h in hits}
        citations = [c for c in dict.fromkeys(CITED.findall(text)) if c in known]
        return Answer(text, citations, text.strip() == ABSTAIN)


JUDGE_PROMPT = (
    "Given context passages and an answer, reply with one number between 0 and 1: the share "
    "of the answer's claims that the context supports. Reply with the number only."
)


def judge_faithfulness(client: ChatCompletionsClient, answer: str, hits: list[Hit]) -> float:
    """An LLM judge's faithfulness score, reported beside the embedding proxy."""
    reply = client.complete(JUDGE_PROMPT, f"{context_prompt('', hits)}\n\nAnswer: {answer}")
    match = re.search(r"[01](?:\.\d+)?", reply)
    return float(match.group()) if match else float("nan")


def generator_from_env(environ: dict, bank: SentenceBank, min_similarity: float) -> Generator:
    """LLM when ML_ASSETS_LLM_URL is set (model ML_ASSETS_LLM_MODEL, key ML_ASSETS_LLM_KEY),
    else extractive."""
    url = environ.get("ML_ASSETS_LLM_URL", "")
    if not url:
        return ExtractiveGenerator(bank, min_similarity)
    return LlmGenerator(llm_client_from_env(environ))


def llm_client_from_env(environ: dict) -> ChatCompletionsClient | None:
    url = environ.get("ML_ASSETS_LLM_URL", "")
    if not url:
        return None
    return ChatCompletionsClient(url, environ.get("ML_ASSETS_LLM_MODEL", "default"),
                                 environ.get("ML_ASSETS_LLM_KEY", ""))  # fmt: skip
