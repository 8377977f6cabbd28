"""The HTTP contract between ``llmreg serve`` and the client: the request and response
bodies (:mod:`.models`) and the one table of operations (:mod:`.operations`).
"""
