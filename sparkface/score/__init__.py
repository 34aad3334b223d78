"""Score: the scoring transform on the executors, the one-off run, nightly campaigns and their
lock."""
