"""Render every version of the given prompts with MLflow's own PromptVersion.format
(run with the MLflow venv's python). Usage: python render.py URI JSON_SPEC
where JSON_SPEC is {"name": {"versions": N, "vars": {...}}}; prints JSON
{"name": {"1": rendered, ...}}."""

import json
import sys

import mlflow

mlflow.set_tracking_uri(sys.argv[1])
out = {}
for name, spec in json.loads(sys.argv[2]).items():
    out[name] = {}
    for v in range(1, spec["versions"] + 1):
        prompt = mlflow.genai.load_prompt(f"prompts:/{name}/{v}")
        out[name][str(v)] = prompt.format(**spec["vars"])
print(json.dumps(out))
