"""The OpenAI provider against a local HTTP server that imitates the embeddings API.

This is the one place a fake stands in for a real service: the OpenAI API is a paid remote
service this machine cannot reach. The fake speaks the real wire format; the real `openai`
client talks to it over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from self_learning_memory.embeddings.openai import OpenAIEmbedding
from self_learning_memory.errors import CapabilityUnavailableError

pytestmark = pytest.mark.integration


class FakeAPI:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.failures_left = 0


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def _send(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            request = json.loads(self.rfile.read(length))
            request["auth"] = self.headers.get("Authorization")
            api.requests.append(request)
            if api.failures_left > 0:
                api.failures_left -= 1
                self._send(500, {"error": {"message": "internal", "type": "server_error"}})
                return
            if api.mode == "error":
                self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
                return
            if api.mode == "garbage":
                self._send(200, b"this is not json")
                return
            dims = request.get("dimensions", 8)
            if api.mode == "wrong_dims":
                dims += 1
            texts = request["input"]
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": [float(len(t) % 7 + j) for j in range(dims)],
                }
                for i, t in enumerate(texts)
            ]
            if api.mode == "short":
                data = data[:-1]
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": request["model"],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                },
            )

    return Handler


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAPI, str]]:
    api = FakeAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")
    yield api, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def provider(url: str, **kwargs: Any) -> OpenAIEmbedding:
    return OpenAIEmbedding(
        model="text-embedding-3-small",
        dimensions=8,
        base_url=url,
        api_key_env="TEST_OPENAI_KEY",
        timeout_s=5,
        max_retries=kwargs.pop("max_retries", 0),
        batch_size=kwargs.pop("batch_size", 2),
    )


async def test_embeds_in_batches_with_key_and_dimensions(fake_api: tuple[FakeAPI, str]) -> None:
    api, url = fake_api
    batch = await provider(url).embed(["a", "bb", "ccc"])
    assert batch.vectors.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-6)
    assert [len(r["input"]) for r in api.requests] == [2, 1]  # batch_size 2
    assert api.requests[0]["dimensions"] == 8
    assert api.requests[0]["auth"] == "Bearer sk-test"


async def test_retries_server_errors_then_succeeds(fake_api: tuple[FakeAPI, str]) -> None:
    api, url = fake_api
    api.failures_left = 1
    batch = await provider(url, max_retries=2).embed(["a"])
    assert batch.vectors.shape == (1, 8)
    assert len(api.requests) == 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "failed"),
        ("garbage", "failed"),
        ("wrong_dims", "shape"),
        ("short", "returned 1 vectors for 2"),
    ],
)
async def test_bad_responses_raise_a_typed_error(
    fake_api: tuple[FakeAPI, str], mode: str, message: str
) -> None:
    api, url = fake_api
    api.mode = mode
    with pytest.raises(CapabilityUnavailableError, match=message):
        await provider(url).embed(["a", "b"])


async def test_missing_key_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    p = OpenAIEmbedding(api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(CapabilityUnavailableError, match="NO_SUCH_KEY_VAR"):
        await p.embed(["a"])
