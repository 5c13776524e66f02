"""Evaluation reports: the same numbers as scikit-learn's, as JSON and as a terminal table."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import classification_report as sklearn_report

from textclf.metrics import classification_report, format_report

LABELS = ["comp.graphics", "rec.sport.baseball", "sci.space"]
Y_TRUE = ["sci.space"] * 5 + ["rec.sport.baseball"] * 4 + ["comp.graphics"] * 3
Y_PRED = (
    ["sci.space"] * 3
    + ["comp.graphics"] * 2
    + ["rec.sport.baseball"] * 3
    + ["sci.space"]
    + ["comp.graphics"] * 2
    + ["rec.sport.baseball"]
)


def test_matches_sklearn_on_a_small_example() -> None:
    ours = classification_report(Y_TRUE, Y_PRED, LABELS)
    theirs = sklearn_report(Y_TRUE, Y_PRED, labels=LABELS, output_dict=True, zero_division=0)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"]) == pytest.approx(8 / 12)
    assert ours["macro_f1"] == pytest.approx(theirs["macro avg"]["f1-score"])
    assert ours["n"] == len(Y_TRUE) == 12
    assert list(ours["per_label"]) == LABELS  # the model's label order, not sorted by sklearn
    for label in LABELS:
        row, reference = ours["per_label"][label], theirs[label]
        assert row["precision"] == pytest.approx(reference["precision"])
        assert row["recall"] == pytest.approx(reference["recall"])
        assert row["f1"] == pytest.approx(reference["f1-score"])
        assert row["support"] == reference["support"]


def test_hand_computed_numbers() -> None:
    row = classification_report(Y_TRUE, Y_PRED, LABELS)["per_label"]["sci.space"]
    # sci.space: 3 of 5 found; predicted 4 times, 3 right.
    assert row["recall"] == pytest.approx(3 / 5)
    assert row["precision"] == pytest.approx(3 / 4)
    assert row["f1"] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert row["support"] == 5


def test_report_is_json_ready() -> None:
    report = classification_report(Y_TRUE, Y_PRED, LABELS)
    assert json.loads(json.dumps(report)) == report
    assert all(type(v["support"]) is int for v in report["per_label"].values())


def test_labels_absent_from_the_test_set_do_not_lower_macro_f1() -> None:
    labels = [*LABELS, "talk.politics.misc"]
    report = classification_report(Y_TRUE, Y_PRED, labels)
    assert report["per_label"]["talk.politics.misc"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert report["macro_f1"] == pytest.approx(
        classification_report(Y_TRUE, Y_PRED, LABELS)["macro_f1"]
    )


def test_perfect_and_empty_reports() -> None:
    perfect = classification_report(Y_TRUE, Y_TRUE, LABELS)
    assert perfect["accuracy"] == perfect["macro_f1"] == 1.0
    empty = classification_report([], [], LABELS)
    assert empty["accuracy"] == empty["macro_f1"] == 0.0
    assert empty["n"] == 0


def test_format_report_lists_every_label_and_the_totals() -> None:
    report = classification_report(Y_TRUE, Y_PRED, LABELS)
    text = format_report(report, title="test set:")
    lines = text.splitlines()
    assert lines[0] == "test set:"
    assert lines[1].split() == ["label", "precision", "recall", "f1", "support"]
    for label in LABELS:
        (line,) = [x for x in lines if x.startswith(label)]
        row = report["per_label"][label]
        assert line.split()[1:] == [
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            str(row["support"]),
        ]
    assert lines[-1].startswith(f"accuracy {8 / 12:.4f}")
    assert f"macro-F1 {report['macro_f1']:.4f}" in lines[-1] and "n=12" in lines[-1]


def test_format_report_aligns_long_labels_and_omits_an_empty_title() -> None:
    long_label = "a.very.long.label.name.indeed"
    report = classification_report(["x", long_label], ["x", long_label], ["x", long_label])
    lines = format_report(report).splitlines()
    assert lines[0].startswith("label ")
    header_width = lines[0].index("precision")
    assert all(len(line) >= header_width for line in lines[1:3])
    assert lines[1].index("1.000") == lines[2].index("1.000")
