"""Image captioning (Show, Attend and Tell): an LSTM decoder attending over CNN regions, or a pooled image.

``attnbench train captioning --variant reference`` trains on the embedded digit/shape scenes
(``scenes.py``); ``--data FOLDER`` reads COCO-format captions and images (``real.py``). See
``model.py`` (encoder and decoder), ``tasks.decoding`` (greedy, beam search) and ``module.py``
(loss with the doubly stochastic regulariser, BLEU / CIDEr-D, ``attention_maps``).
"""

from .task import CaptioningTask

TASK = CaptioningTask()

__all__ = ["TASK", "CaptioningTask"]
