"""The HTTP server (FastAPI). Imported only by ``llmreg serve`` and tests."""
