"""A thread's state in Redis: the fenced event store, the lock, who holds a thread, snapshots."""
