"""The producer side of the queue: task names, claim-then-enqueue, replay and sweep queuing.

It runs in the web process and the CLI; `tasks/` holds only what a worker runs.
"""
