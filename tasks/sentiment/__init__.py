"""Sentiment classification: BiLSTM or Transformer encoder with attention pooling vs final-state pooling.

``attnbench train sentiment --variant additive`` trains on the embedded templated reviews;
``--data`` reads UCI ``sentence<TAB>label`` files or SST-2 style TSV (see ``data.py``).
"""

from .task import SentimentTask

TASK = SentimentTask()

__all__ = ["TASK", "SentimentTask"]
