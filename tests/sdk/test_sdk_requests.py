"""``openai_request()`` / ``anthropic_request()`` go through each provider's real SDK.

Every example bundle and a set of generated ones is rendered; each request is sent by
the SDK's own client to a fake HTTP endpoint on 127.0.0.1 that this test starts, and what
arrives must be exactly the JSON body llmreg meant. Both the current major of each SDK
(the dev extra) and the previous one (installed with ``pip install --target`` into
``.cache/sdk/``, used through PYTHONPATH in a subprocess) are checked.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import llmreg
from llmreg.errors import InvalidBundleError
from tests.conftest import EXAMPLES, ROOT

PREVIOUS = {"openai": "openai==2.54.0", "anthropic": "anthropic==1.13.0"}
CACHE = ROOT / ".cache" / "sdk"


class _Fake(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, body))
        if self.path.endswith("/chat/completions"):
            answer: dict[str, Any] = {
                "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "ok"}}]}
        else:
            answer = {"id": "m1", "type": "message", "role": "assistant",
                      "model": body["model"], "content": [{"type": "text", "text": "ok"}],
                      "stop_reason": "end_turn", "stop_sequence": None,
                      "usage": {"input_tokens": 1, "output_tokens": 1}}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    received: list[tuple[str, Any]] = []
    handler = type("Handler", (_Fake,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _previous_majors() -> str:
    """A PYTHONPATH holding the previous major of both SDKs (installed once, cached)."""
    paths = []
    for name, spec in PREVIOUS.items():
        target = CACHE / spec.replace("==", "-")
        if not (target / name / "__init__.py").exists():
            subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                            "--target", str(target), spec], check=True)
        paths.append(str(target))
    return os.pathsep.join(paths)


# --- the requests: every example bundle, and generated ones ------------------------

VARIABLES = {
    "support-rag": {"question": "Can I return shoes?", "customer_tier": "premium",
                    "documents": [{"id": "r1", "title": "Returns", "text": "30 days."}]},
    "ticket-classifier": {"subject": "Refund", "body": "Where is it?"},
    "meeting-summariser": {"transcript": "A: ship it", "audience": "team"},
}
MODELS = {"openai": ["gpt-4o-2024-08-06", "gpt-4.1-mini-2025-04-14", "o3-2025-04-16",
                     "gpt-5-2025-08-07"],
          "anthropic": ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]}


def generated(n: int, seed: int = 12) -> list[llmreg.Bundle]:
    """``n`` random bundles for both providers: parameters, tools, schema, few-shot."""
    rnd = random.Random(seed)
    out: list[llmreg.Bundle] = []
    while len(out) < n:
        provider = rnd.choice(["openai", "anthropic"])
        model_id = rnd.choice(MODELS[provider])
        params: dict[str, Any] = {"max_tokens": rnd.randint(1, 4000)}
        reasoning = model_id.startswith(("o3", "gpt-5"))
        if rnd.random() < 0.6 and not reasoning:
            params["temperature"] = round(rnd.uniform(0, 1), 2)
        if rnd.random() < 0.4 and not reasoning:
            params["top_p"] = round(rnd.uniform(0, 1), 2)
        if rnd.random() < 0.4:
            params["stop"] = [f"END{i}" for i in range(rnd.randint(1, 4))]
        if provider == "anthropic" and rnd.random() < 0.3:
            params["top_k"] = rnd.randint(1, 50)
        if provider == "openai":
            if rnd.random() < 0.3:
                params["seed"] = rnd.randint(0, 2**31)
            if rnd.random() < 0.3 and not reasoning:
                params["presence_penalty"] = round(rnd.uniform(-2, 2), 2)
                params["frequency_penalty"] = round(rnd.uniform(-2, 2), 2)
        data: dict[str, Any] = {
            "model": {"provider": provider, "id": model_id, "parameters": params},
            "system_prompt": rnd.choice(["", "Be brief.", "Answer in French.\nNo emoji."]),
            "template": {"source": "Q: {{ q }}", "variables": ["q"]},
            "few_shot": [{"input": {"q": f"q{i}"}, "output": f"a{i}"}
                         for i in range(rnd.randint(0, 2))],
        }
        if rnd.random() < 0.5:
            data["tools"] = [{"name": f"tool_{i}", "description": f"Tool {i}.",
                              "parameters": {"type": "object", "required": ["x"],
                                             "properties": {"x": {"type": "string"}}}}
                             for i in range(rnd.randint(1, 3))]
        if provider == "openai" and rnd.random() < 0.4:
            params["response_format"] = "json_schema"
            data["response_schema"] = {"type": "object", "additionalProperties": False,
                                       "required": ["a"], "properties": {"a": {"type": "string"}}}
        out.append(llmreg.Bundle.from_dict(data))
    return out


def requests_to_send() -> list[dict[str, Any]]:
    items = []
    for name in sorted(VARIABLES):
        bundle, _ = llmreg.load_bundle_dir(EXAMPLES / name)
        msgs = bundle.render(**VARIABLES[name])
        items += [{"api": "openai", "request": msgs.openai_request()}]
        if bundle.model is not None and bundle.model.provider == "anthropic":
            items += [{"api": "anthropic", "request": msgs.anthropic_request()}]
    for bundle in generated(40):
        msgs = bundle.render(q="What is 2+2?")
        assert bundle.model is not None
        api = "anthropic" if bundle.model.provider == "anthropic" else "openai"
        request = msgs.anthropic_request() if api == "anthropic" else msgs.openai_request()
        items.append({"api": api, "request": request})
    return items


def wire(item: dict[str, Any]) -> dict[str, Any]:
    """The JSON body an SDK call with these keyword arguments must put on the wire."""
    request = dict(item["request"])
    extra = request.pop("extra_body", {})
    return {**request, **extra}


@pytest.mark.slow
@pytest.mark.parametrize("majors", ["current", "previous"])
def test_every_request_reaches_the_provider_sdk_intact(
        majors: str, fake: tuple[str, list[tuple[str, Any]]]) -> None:
    url, received = fake
    items = requests_to_send()
    env = dict(os.environ)
    if majors == "previous":
        env["PYTHONPATH"] = _previous_majors()
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("send.py"))],
                          input=json.dumps({"url": url, "requests": items}), env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    versions = json.loads(done.stdout)
    expected_major = {"current": {"openai": "3", "anthropic": "2"},
                      "previous": {"openai": "2", "anthropic": "1"}}[majors]
    assert {k: v.split(".")[0] for k, v in versions.items()} == expected_major
    assert len(received) == len(items)
    for item, (path, body) in zip(items, received, strict=True):
        assert path == ("/v1/chat/completions" if item["api"] == "openai" else "/v1/messages")
        assert body == wire(item), (item["api"], body, wire(item))


def test_tools_reach_both_request_shapes() -> None:
    tool = {"name": "lookup", "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}
    base: dict[str, Any] = {"template": {"source": "{{ q }}", "variables": ["q"]},
                            "tools": [tool]}
    oa = llmreg.Bundle.from_dict({**base, "model": {"provider": "openai",
                                                    "id": "gpt-4o-2024-08-06"}})
    assert oa.render(q="x").openai_request()["tools"] == [
        {"type": "function", "function": tool}]
    an = llmreg.Bundle.from_dict({**base, "model": {
        "provider": "anthropic", "id": "claude-sonnet-4-5-20250929",
        "parameters": {"max_tokens": 10}}})
    assert an.render(q="x").anthropic_request()["tools"] == [
        {"name": "lookup", "description": "Find an order.",
         "input_schema": tool["parameters"]}]


def test_reasoning_models_get_max_completion_tokens() -> None:
    b = llmreg.Bundle.from_dict({"template": {"source": "{{ q }}", "variables": ["q"]},
                                 "model": {"provider": "openai", "id": "o4-mini-2025-04-16",
                                           "parameters": {"max_tokens": 500}}})
    request = b.render(q="x").openai_request()
    assert request["max_completion_tokens"] == 500 and "max_tokens" not in request


@pytest.mark.parametrize(("provider", "model_id", "params", "expected"), [
    ("anthropic", "claude-sonnet-4-5-20250929", {},
     "model.parameters.max_tokens: anthropic requires it"),
    ("anthropic", "claude-sonnet-4-5-20250929", {"max_tokens": 9, "temperature": 1.5},
     "outside anthropic's range 0 to 1"),
    ("anthropic", "claude-sonnet-4-5-20250929", {"max_tokens": 9, "seed": 1},
     "model.parameters.seed: anthropic has no such request field"),
    ("anthropic", "claude-sonnet-4-5-20250929", {"max_tokens": 9, "presence_penalty": 1},
     "model.parameters.presence_penalty: anthropic has no such request field"),
    ("anthropic", "claude-sonnet-4-5-20250929", {"max_tokens": 9,
                                                 "response_format": "json_object"},
     "model.parameters.response_format: anthropic has no such request field"),
    ("openai", "gpt-4o-2024-08-06", {"top_k": 5},
     "model.parameters.top_k: openai has no such request field"),
    ("openai", "gpt-4o-2024-08-06", {"stop": ["a", "b", "c", "d", "e"]},
     "5 sequences; openai takes at most 4"),
    ("openai", "o3-2025-04-16", {"temperature": 0.2},
     "o3-2025-04-16 is a reasoning model and takes no sampling parameters"),
])
def test_fields_a_provider_cannot_take_are_refused_at_registration(
        provider: str, model_id: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidBundleError, match=expected.replace("(", r"\(")):
        llmreg.Bundle.from_dict({"template": {"source": "{{ q }}", "variables": ["q"]},
                                 "model": {"provider": provider, "id": model_id,
                                           "parameters": params}})
