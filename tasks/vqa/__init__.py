"""Visual question answering: question-guided (stacked) attention over image regions vs a mean-pooled image.

``attnbench train vqa --variant reference`` trains on the embedded Sort-of-CLEVR data
(``sortofclevr.py``); ``--data FOLDER`` reads VQA v2 style or easy-vqa files (``real.py``).
See ``model.py`` (the model), ``data.py`` (vocabularies, loaders) and ``module.py`` (metrics,
``attention_maps``).
"""

from .task import VQATask

TASK = VQATask()

__all__ = ["TASK", "VQATask"]
