"""Diff benchmark: two bundles with N few-shot examples and 20 KB prompts.

Run:  python -m bench.bench_diff        (about a minute)

Target (issue 4): under 200 ms in-process at 2,000 examples. Also shows how the time
grows from 200 to 20,000 examples. Writes the "Semantic diff" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import random
import time

import llmreg
from bench.common import machine, median, write_section

SIZES = (200, 2_000, 20_000)
RUNS = 7


def prompt(seed: int, size: int = 20_000) -> str:
    rnd = random.Random(seed)
    words = ["policy", "customer", "refund", "order", "never", "always", "cite", "article",
             "answer", "briefly", "escalate", "ticket", "premium", "standard", "shipping"]
    lines = []
    while sum(len(x) + 1 for x in lines) < size:
        lines.append(" ".join(rnd.choice(words) for _ in range(12)))
    return "\n".join(lines) + "\n"


def pair(n: int) -> tuple[llmreg.Bundle, llmreg.Bundle]:
    """Two bundles: the second changes the pin, a parameter, ~1% of prompt lines,
    edits 1% of examples, adds and removes 1%, and swaps two."""
    examples = [{"input": {"q": f"question {i} about order {i * 7}"},
                 "output": f"answer {i}: " + "x" * 80} for i in range(n)]
    base = {
        "model": {"provider": "openai", "id": "gpt-4o-2024-05-13",
                  "parameters": {"temperature": 0.2}},
        "system_prompt": prompt(1),
        "template": {"source": prompt(2, 20_000) + "{{ q }}", "variables": ["q"]},
        "few_shot": examples,
    }
    new = {**base, "model": {"provider": "openai", "id": "gpt-4o-2024-08-06",
                             "parameters": {"temperature": 0.3}}}
    lines = base["system_prompt"].splitlines()  # type: ignore[union-attr]
    for i in range(0, len(lines), 100):
        lines[i] = lines[i].upper()
    new["system_prompt"] = "\n".join(lines) + "\n"
    few = [dict(e) for e in examples]
    step = max(1, n // max(1, n // 100))
    for i in range(0, n, step):
        few[i] = {**few[i], "output": few[i]["output"] + " (edited)"}
    few = few[: n - n // 100] + [{"input": "new", "output": f"n{i}"} for i in range(n // 100)]
    few[1], few[2] = few[2], few[1]
    new["few_shot"] = few
    return llmreg.Bundle.from_dict(base), llmreg.Bundle.from_dict(new)


def main() -> None:
    rows = []
    for n in SIZES:
        old, new = pair(n)
        llmreg.diff_bundles(old, new)  # warm imports and caches
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            result = llmreg.diff_bundles(old, new)
            times.append((time.perf_counter() - start) * 1000)
        fs = result.few_shot
        assert fs is not None and result.model is not None and result.model.pin is not None
        rows.append(f"| {n:,} | {median(times):.1f} | {min(times):.1f} | "
                    f"+{len(fs.added)} -{len(fs.removed)} ~{len(fs.modified)} |")
        print(rows[-1])
    body = f"""
Command: `python -m bench.bench_diff`. Machine: {machine()}.

`diff_bundles(old, new)` in-process on two already-loaded bundles, each with a 20 KB
system prompt and a 20 KB template, N few-shot examples; the new one changes the model
pin and temperature, about 1% of prompt lines, edits about 1% of examples, adds and
removes 1% and swaps a pair. Median and best of {RUNS} runs. Target: under 200 ms at
2,000 examples.

| examples | median ms | best ms | few-shot result |
|---|---|---|---|
{chr(10).join(rows)}
"""
    write_section("Semantic diff", body)
    print(body)


if __name__ == "__main__":
    main()
