"""Evaluate: metrics from predictions or from counts, the Spark tally, reports, and ensembles of
model packages."""
