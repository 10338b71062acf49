"""Task distributions: each produces ``mamllib.batch.TaskBatch`` meta-batches."""

from mamllib.tasks.omniglot import OmniglotTasks, split_characters
from mamllib.tasks.sinusoid import SinusoidTasks

TASKS = {"sinusoid": SinusoidTasks}


def get_tasks(name: str, **kwargs):
    """The task distribution called ``name`` (one of ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task distribution {name!r}; valid names: {sorted(TASKS)}")
    return TASKS[name](**kwargs)


__all__ = [
    "TASKS",
    "OmniglotTasks",
    "SinusoidTasks",
    "get_tasks",
    "split_characters",
]
