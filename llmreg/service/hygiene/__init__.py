"""Keeping the registry clean: owners, deprecation, served traffic, alerts and the
scheduled jobs that run them.
"""
