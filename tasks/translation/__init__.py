"""Machine translation: RNN encoder-decoder (attention or a fixed context) and a Transformer.

``attnbench train translation --variant additive`` trains on the embedded synthetic language pair;
``--data FOLDER`` reads parallel text in the Multi30k layout (``data.src_lang``/``data.tgt_lang``).
See ``synthetic.py`` (the data), ``model.py`` (the two families, ``rnn.py`` and
``transformer.py``), ``tasks.decoding`` (greedy and beam search) and ``module.py`` (training and
metrics).
"""

from .task import TranslationTask

TASK = TranslationTask()

__all__ = ["TASK", "TranslationTask"]
