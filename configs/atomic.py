"""Atomic file writes, the one implementation every attnbench package uses.

It lives in ``configs`` because that is the package beneath all the others: it imports only the
standard library, and every layer may import it without breaking the direction of the design
(the top level is fixed, so there is no separate utilities package). ``reports.records`` writes
JSON records through it (and must not import ``tasks/``, nor pay for torch), ``tasks._cache``
writes the embedded-data cache through it (and must not import ``reports/``).

A file written here is first written in full to a hidden temporary file in the same folder,
flushed to disk, then renamed onto its path (``os.replace``, atomic on one file system): a reader
sees the old file or the whole new one, never half of it, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A file opened in ``mode`` ("w" or "wb") whose contents replace ``path`` when the block ends.

    The folder is created if needed. If the block raises, the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            # on disk before the rename, so a crash cannot leave an empty file under the final name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
