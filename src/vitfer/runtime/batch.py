"""Prediction as a batch function for data engines: Ray Data's ``map_batches``, Spark's ``mapInPandas``.

One instance per worker holds a ``Predictor``; each call takes a table with a ``path`` column and returns one
row per face (the columns of ``vitfer predict --save faces.csv``), and one row with an ``error`` for an image
that could not be read, so a bad file never fails a whole job. Tables are pandas DataFrames: the engines bring
pandas, the runtime does not need it.
"""

from __future__ import annotations

from vitfer.runtime.rows import face_rows
from vitfer.runtime.predictor import Predictor
from vitfer.runtime.results import FrameResult
from vitfer.errors import SourceError


class BatchPredictor:
    """``BatchPredictor(model, detector, ...)(table_with_path_column) -> table of faces``.

    >>> import ray                                                            # doctest: +SKIP
    >>> faces = (ray.data.from_items([{"path": p} for p in paths])           # doctest: +SKIP
    ...          .map_batches(BatchPredictor, batch_format="pandas", concurrency=8, batch_size=64))
    """

    def __init__(self, model: str | None = None, **predictor_options) -> None:
        self.predictor = Predictor(model, **predictor_options)

    def __call__(self, batch: pd.DataFrame | dict) -> pd.DataFrame:  # noqa: F821 - pandas comes with the engine
        import pandas as pd

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
