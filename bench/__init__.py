"""Benchmark: what an Outerloop agent step costs next to a raw RQ no-op job, in one run.

Run it from the repository root (it needs ``redis-server`` on the PATH and starts its own
on a free port, without persistence, then stops it)::

    .venv/bin/python -m bench              # 200 jobs per run, under a minute on 2 CPUs
    .venv/bin/python -m bench --repeat 3   # medians of three passes: steadier, three times as long

It measures, on real worker processes, each of:

- a no-op RQ job (``bench.jobs.noop``) on ``rq worker``: the baseline, with RQ's default
  worker class (``rq.Worker``: a forked work horse per job, scheduler on);
- the same job on ``rq worker --worker-class rq.SimpleWorker``: no fork, to show the fork's share;
- the same job on ``outerloop worker --processes 1``: what our worker process adds before our
  job runs (a supervised pool of non-forking workers, ``bot.work.pool``);
- Outerloop advance jobs on ``outerloop worker``, one a thread: a job whose one step asks the
  model, and a job that runs a no-op tool the model chose and asks again (``bench.subjects``);
- the asking job on RQ's forking worker, warmed as ``outerloop worker`` was before its pool:
  what a fork per job cost.

For each: the client's cost to submit a job, the cost per job while one worker is busy (from
RQ's own end timestamps over the middle 80% of the run), jobs per second with one and with two
workers, and the median round trip from submitting one job to its stored result with one idle
worker. It prints the ratio of an Outerloop step to the raw RQ job against the target (1.5x)
and splits the difference into the fork, the worker process, our job and a further step.
Numbers are ratios measured in the same run; other load on the machine moves them.
"""
