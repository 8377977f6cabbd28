"""Importers: each reads another registry and builds an
:class:`~llmreg.service.importers.apply.ImportPlan` that
:meth:`~llmreg.service.importers.apply.Imports.apply` writes in one transaction
(see :mod:`llmreg.service.importers.mlflow`).

Example:
    >>> from llmreg.service.importers.mlflow import to_jinja
    >>> to_jinja("Summarise {{text}}")
    ('Summarise {{ text }}', ['text'])
"""
