"""The llmreg command line (installed as the ``llmreg_cli`` package)."""
