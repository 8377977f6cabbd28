"""The client: :class:`~llmreg.client.core.Client` and the backends under it
(embedded, HTTP, the signed mirror), their transport and the disk cache.
"""
