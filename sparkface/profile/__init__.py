"""Profile: the balance of a folder of labelled faces (statistics, charts, report)."""
