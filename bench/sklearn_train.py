"""The baseline `train_speed` times: load 20 Newsgroups, fit TF-IDF (1-2 grams) + LinearSVC.

Run as its own process (`python -m bench.sklearn_train`) so that its wall time includes the same
interpreter start, imports and data loading as `textclf train`; prints one JSON line of timings.
It reads the data with textclf's loader, so both sides train on the very same split.
"""

from __future__ import annotations

import argparse
import json
import time

START = time.perf_counter()

from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from bench.common import load_splits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setting", default="kept", choices=["kept", "removed"])
    args = parser.parse_args()
    imported = time.perf_counter()
    splits = load_splits(args.setting)
    loaded = time.perf_counter()
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2), LinearSVC()
    )
    pipeline.fit(splits.train.texts, splits.train.labels)
    fitted = time.perf_counter()
    accuracy = float(pipeline.score(splits.test.texts, splits.test.labels))
    timings = {
        "import": imported - START,
        "load_data": loaded - imported,
        "fit": fitted - loaded,
        "total": time.perf_counter() - START,
    }
    print(json.dumps({"timings": timings, "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
