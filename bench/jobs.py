"""The baseline job, alone in a module that imports nothing.

A forking RQ worker imports a job's module in each work horse when the worker itself has
not imported it, and the import is lost when the horse exits; a heavier module here would
add its import time to every baseline job.
"""


def noop() -> None:
    """RQ's own cost, with nothing of ours in it."""
