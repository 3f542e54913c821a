"""The OpenAI-compatible client against a small local server speaking the same API."""

import re

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ml_assets.rag.generation import (
    ABSTAIN,
    JUDGE_PROMPT,
    ChatCompletionsClient,
    LlmGenerator,
    generator_from_env,
    judge_faithfulness,
)
from ml_assets.rag.retrieval import Hit
from ml_assets.serving.local_server import serve_in_thread

pytestmark = pytest.mark.slow
HITS = [
    Hit("chargeback-time-limits#1", "chargeback-time-limits", "Filing window",
        "A fraud chargeback must be filed within 120 days.", 0.9),
    Hit("mcc-fuel#0", "mcc-fuel", "Profile", "Fuel pumps use a pre-authorisation.", 0.4),
]  # fmt: skip


def fake_llm() -> tuple[FastAPI, list[dict]]:
    app, seen = FastAPI(), []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if system == JUDGE_PROMPT:
            content = "0.75"
        elif "moon" in user:
            content = ABSTAIN
        elif body["model"] == "broken":
            return JSONResponse({"error": "overloaded"}, status_code=503)
        else:
            first = re.search(r"\[([^\]]+#\d+)\]", user).group(1)
            content = f"File within 120 days [{first}] [unknown#9]."
        return JSONResponse({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content},
             "finish_reason": "stop"}]})  # fmt: skip

    return app, seen


def test_llm_generator_answers_cites_and_abstains_through_the_chat_api():
    app, seen = fake_llm()
    with serve_in_thread(app) as url:
        environ = {"ML_ASSETS_LLM_URL": f"{url}/v1", "ML_ASSETS_LLM_MODEL": "m",
                   "ML_ASSETS_LLM_KEY": "sk-test"}  # fmt: skip
        generator = generator_from_env(environ, bank=None, min_similarity=0.5)
        assert isinstance(generator, LlmGenerator)
        answer = generator.answer("When must chargebacks be filed?", np.zeros(384), HITS)
        assert answer.citations == ["chargeback-time-limits#1"]  # unknown ids dropped
        assert not answer.abstained
        assert generator.answer("Who lives on the moon?", np.zeros(384), HITS).abstained
        assert judge_faithfulness(generator.client, answer.text, HITS) == pytest.approx(0.75)
        request = seen[0]
        assert request["auth"] == "Bearer sk-test" and request["body"]["model"] == "m"
        assert request["body"]["messages"][0]["role"] == "system"
        assert "[mcc-fuel#0]" in request["body"]["messages"][1]["content"]
        broken = ChatCompletionsClient(f"{url}/v1", "broken")
        with pytest.raises(RuntimeError, match="503.*ML_ASSETS_LLM_URL"):
            broken.complete("s", "u")


def test_without_a_url_the_generator_is_extractive():
    assert generator_from_env({}, bank=None, min_similarity=0.5).name == "extractive"
