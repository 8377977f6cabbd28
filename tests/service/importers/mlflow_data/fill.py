"""Fill an MLflow server through MLflow's own client (run with the MLflow venv's python).

3 prompts x 5 versions with two aliases each, 1 registered model with 2 versions and
artifacts. Usage: python fill.py TRACKING_URI
"""

import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient

uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)


def text_prompt(v):
    # Literal braces MLflow leaves alone, and a Jinja2-looking comment, in every version.
    tmpl = (f"v{v}: Summarise {{{{ text }}}} in {{{{n}}}} words. Keep {{ json }} and "
            "{{ 1 }} and {# this #} as they are.\n")
    if v == 5:  # MLflow renders templates with {% %} with Jinja2 itself
        tmpl = "v5: {% if n %}In {{ n }} words: {% endif %}{{ text }}\n"
    return tmpl


def chat_prompt(v):
    return [{"role": "system", "content": f"You answer support questions (rev {v})."},
            {"role": "user", "content": "Where is order 1?"},
            {"role": "assistant", "content": "Shipped {today}."},
            {"role": "user", "content": "Customer {{ customer }} asks: {{question}}"}]


for name, make, model in (("summarise", text_prompt, "gpt-4o-2024-08-06"),
                          ("support-chat", chat_prompt, "claude-sonnet-4-5-20250929"),
                          ("translate", lambda v: f"Translate to {{{{ lang }}}} (v{v}):\n"
                                                  "{{ text }}", "gpt-4o")):
    provider = "anthropic" if model.startswith("claude") else "openai"
    for v in range(1, 6):
        mlflow.genai.register_prompt(
            name=name, template=make(v), commit_message=f"revision {v}",
            model_config={"provider": provider, "model_name": model,
                          "temperature": round(0.1 * v, 1), "max_tokens": 100 * v,
                          "stop_sequences": ["END"]})
    mlflow.genai.set_prompt_alias(name, alias="production", version=3)
    mlflow.genai.set_prompt_alias(name, alias="staging", version=5)

mlflow.set_experiment("train")
client.create_registered_model("classifier")
for i in range(2):
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01 * (i + 1))
        mlflow.log_metric("accuracy", 0.8 + i / 10)
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "weights.bin"), "wb") as fh:
            fh.write(bytes(range(256)) * (40 + i))
        os.makedirs(os.path.join(folder, "tokenizer"))
        with open(os.path.join(folder, "tokenizer", "vocab.txt"), "w") as fh:
            fh.write("a\nb\n")
        mlflow.log_artifacts(folder, artifact_path="model")
        client.create_model_version("classifier", f"{run.info.artifact_uri}/model",
                                    run_id=run.info.run_id, description=f"run {i + 1}")
client.set_registered_model_alias("classifier", "production", "1")
client.set_registered_model_alias("classifier", "champion", "2")
print("filled")
