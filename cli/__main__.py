"""``python -m llmreg_cli`` runs the CLI (same as the ``llmreg`` script)."""

from .main import main

main()
