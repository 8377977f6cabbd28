"""The signed static mirror (TUF): the publisher, its destinations and its keys.
"""
