"""Events and their delivery: the outbox written in each change's transaction, webhooks,
the delivery worker and the SSRF guard.
"""
