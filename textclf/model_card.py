"""The model card written into every artifact: what a person reads before trusting a model."""

from __future__ import annotations

from typing import Any

LEARNING_CURVES = "learning_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
RELIABILITY_DIAGRAM = "reliability_diagram.png"


def render_model_card(manifest: dict[str, Any]) -> str:
    """Markdown summary of a manifest: data, configuration, metrics, limits."""
    metrics = manifest.get("metrics", {})
    lines = [
        f"# Model card: {manifest['name']}",
        "",
        f"- version: `{manifest['version']}` (content hash), format {manifest['format_version']}",
        f"- created: {manifest['created_at']}",
        f"- labels ({len(manifest['labels'])}): {', '.join(manifest['labels'])}",
        f"- architecture: TF-IDF ({manifest['model_config']['n_features']} terms) -> MLP "
        f"hidden {manifest['model_config']['hidden']} -> {manifest['model_config']['n_labels']}"
        " labels" + (" + a naive Bayes term" if manifest["model_config"].get("wide") else ""),
        "",
        "## Data",
        "",
        *(f"- {k}: {v}" for k, v in manifest.get("data", {}).items()),
        "",
        "## Metrics",
        "",
        "| split | accuracy | macro-F1 | n |",
        "|---|---|---|---|",
        *(
            f"| {split} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['n']} |"
            for split, m in metrics.items()
        ),
        "",
        "Model selection (early stopping) used the validation split only; the test split was",
        "scored once, after training.",
        *_selection(manifest.get("training", {})),
        "",
        *_calibration(metrics),
        *_pictures(manifest.get("files", {})),
        "## Intended use and limits",
        "",
        "A bag-of-words classifier: it sees which words occur, not their order, and it only knows",
        "the labels above. Texts unlike the training data (other topics, languages or eras) get",
        "confident-looking but unreliable scores; check `score` before acting on a prediction.",
        "",
    ]
    return "\n".join(lines)


def _selection(training: dict[str, Any]) -> list[str]:
    """How validation set the blend, and whether the shipped model was refit."""
    lines = []
    blend = training.get("blend")
    if blend:
        pairs = blend.get("bigram_weight", 0.0)
        pair_text = f" and the word-pair naive Bayes weight ({pairs:.3f})" if pairs else ""
        lines.append(
            f"Validation also set the logit scale ({blend['scale']:.3f}), the naive Bayes "
            f"weight ({blend['nb_weight']:.3f}){pair_text}: log-loss "
            f"{blend['val_loss_before']:.4f} -> {blend['val_loss_after']:.4f}."
        )
    refit = training.get("refit")
    if refit:
        lines.append(
            f"The shipped model was then retrained on training + validation ({refit['examples']} "
            f"texts) for the {refit['epochs']} epochs validation chose, so its validation metrics "
            "are those of the same recipe trained without the validation split."
        )
    return ["", *lines] if lines else []


def _calibration(metrics: dict[str, Any]) -> list[str]:
    """ECE before/after the temperature and the accuracy-vs-coverage table, where recorded."""
    split, report = next(
        ((s, m["calibration"]) for s, m in metrics.items() if "calibration" in m), (None, None)
    )
    if report is None:
        return []
    return [
        "## Calibration",
        "",
        f"Expected calibration error on the {split} split ({report['bins']} equal-width bins "
        f"of the top score): {report['ece_before_temperature']:.4f} before the fitted "
        f"temperature ({report['temperature']:.3f}), {report['ece']:.4f} after it (served).",
        "",
        "Accepting only predictions whose score reaches a threshold:",
        "",
        "| score at least | coverage | accuracy | n |",
        "|---|---|---|---|",
        *(
            f"| {row['threshold']:.2f} | {row['coverage']:.1%} | {row['accuracy']:.4f} | "
            f"{row['n']} |"
            for row in report["coverage"]
        ),
        "",
    ]


def _pictures(files: dict[str, Any]) -> list[str]:
    shown = [
        (LEARNING_CURVES, "Learning curves"),
        (CONFUSION_MATRIX, "Confusion matrix"),
        (RELIABILITY_DIAGRAM, "Reliability diagram"),
    ]
    lines = [f"![{title}]({name})" for name, title in shown if name in files]
    return [*lines, ""] if lines else []
