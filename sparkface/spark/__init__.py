"""Spark plumbing the stages share: the session, the job runner and its exit codes, progress and
logs, reading image folders, naming paths, writing predictions."""
