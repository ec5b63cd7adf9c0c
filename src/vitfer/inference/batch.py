"""Prediction as a batch function for data engines: Ray Data's ``map_batches``, Spark's ``mapInPandas``.

One instance per worker holds a ``Predictor``; each call takes a table with a ``path`` column and returns one
row per face (the columns of ``vitfer predict --save faces.csv``), and one row with an ``error`` for an image
that could not be read, so a bad file never fails a whole job.
"""

from __future__ import annotations

import pandas as pd

from vitfer.inference.output import face_rows
from vitfer.inference.predictor import Predictor
from vitfer.inference.results import FrameResult
from vitfer.inference.sources import SourceError


class BatchPredictor:
    """``BatchPredictor(model, detector, ...)(table_with_path_column) -> table of faces``.

    >>> import ray                                                            # doctest: +SKIP
    >>> faces = (ray.data.from_items([{"path": p} for p in paths])           # doctest: +SKIP
    ...          .map_batches(BatchPredictor, batch_format="pandas", concurrency=8, batch_size=64))
    """

    def __init__(self, model: str | None = None, **predictor_options) -> None:
        self.predictor = Predictor(model, **predictor_options)

    def __call__(self, batch: pd.DataFrame | dict) -> pd.DataFrame:
        rows = []
        for path in pd.DataFrame(batch)["path"]:
            try:
                faces = list(self.predictor.predict(str(path)))
            except SourceError as err:
                rows.append({"source": str(path), "error": str(err)})
                continue
            found = face_rows(FrameResult(str(path), 0, 0.0, faces))
            rows += found or [{"source": str(path), "error": "no face found"}]
        return pd.DataFrame(rows)
