"""Send requests through the installed ``openai`` / ``anthropic`` SDK (run as a script).

Reads ``{"url": ..., "requests": [{"api": "openai"|"anthropic", "request": {...}}]}`` on
stdin, sends each with that SDK's real client to ``url`` (a fake server on 127.0.0.1 the
test started), and prints the SDK versions used. A request an SDK refuses fails loudly.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    job = json.load(sys.stdin)
    import anthropic
    import openai

    oa = openai.OpenAI(api_key="test", base_url=job["url"] + "/v1", max_retries=0)
    an = anthropic.Anthropic(api_key="test", base_url=job["url"], max_retries=0)
    for item in job["requests"]:
        if item["api"] == "openai":
            oa.chat.completions.create(**item["request"])
        else:
            an.messages.create(**item["request"])
    print(json.dumps({"openai": openai.__version__, "anthropic": anthropic.__version__}))


if __name__ == "__main__":
    main()
