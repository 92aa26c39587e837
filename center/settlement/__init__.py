"""Merchant settlement: what each merchant is owed by the plan, what the
acquirer settled and the bank credited, and the findings where they differ."""
