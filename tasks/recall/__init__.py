"""Multi-query associative recall (MQAR): a causal decoder must copy each queried key's value.

``attnbench train recall --variant sdpa`` trains on the embedded MQAR sequences (``synthetic.py``;
Arora et al., "Zoology", 2023); the task has no real-format data.
"""

from .task import RecallTask

TASK = RecallTask()

__all__ = ["RecallTask", "TASK"]
