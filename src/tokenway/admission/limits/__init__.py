"""Token and request limits, concurrency and budgets per team, held in memory or in Redis."""
