"""The release flow: evidence, approvals, gates, promotions, rollbacks, retirement.
"""
