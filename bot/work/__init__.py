"""The processes that advance threads: RQ jobs and workers, the pool, the sweeps, the scheduler."""
