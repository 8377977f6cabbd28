"""The metadata store: SQLModel tables over SQLite (embedded) or PostgreSQL.

Imported only by the service layer, never by ``import llmreg``.

Example:
    >>> from llmreg.db.engine import HEAD_REVISION, Database
    >>> db = Database.open("sqlite:///meta.db")  # created and migrated to the head
    >>> db.current_revision() == HEAD_REVISION
    True
"""
