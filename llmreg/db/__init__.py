"""The metadata store: SQLModel tables over SQLite (embedded) or PostgreSQL.

Imported only by the service layer, never by ``import llmreg``.
"""
