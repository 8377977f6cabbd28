"""Importers: each reads another registry and builds an
:class:`~llmreg.service.imports.ImportPlan` (see :mod:`llmreg.service.importers.mlflow`)."""
