"""The model folder: exact round trip, a complete manifest, atomic writes, and loud refusals of
every broken, tampered or unsafe artifact (never unpickling anything)."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.special import softmax

import textclf
from textclf import artifact as artifact_io
from textclf.artifact import FORMAT_VERSION, MANIFEST, MODEL_CARD, VECTORIZER, WEIGHTS, sha256
from textclf.config import TUTORIAL_CATEGORIES, FeatureConfig, ModelConfig, TrainConfig
from textclf.errors import ArtifactError
from textclf.features import build_vectorizer, n_features, to_torch, vectorizer_state
from textclf.model import MLP
from textclf.model_card import (
    CONFUSION_MATRIX,
    LEARNING_CURVES,
    RELIABILITY_DIAGRAM,
    render_model_card,
)
from textclf.predictor import Predictor
from textclf.train import predict_logits

REPO = Path(__file__).resolve().parents[1]
TEXTS = [
    "The shuttle launch was delayed by weather",
    "The pitcher threw a no-hitter in the ninth inning",
    "Rendering 3D graphics with OpenGL and ray tracing",
    "",
    "🚀 naïve ünknown wörds",
]


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def model_copy(trained_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's model, free to break."""
    return Path(shutil.copytree(trained_model_dir, tmp_path / "model"))


def _read_manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST).read_text("utf-8"))


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")


def _replace_file(root: Path, name: str, data: bytes) -> None:
    """Swap a file's bytes AND record the new checksum and size: only later checks can object."""
    (root / name).write_bytes(data)
    manifest = _read_manifest(root)
    manifest["files"][name] = {"sha256": sha256(data), "bytes": len(data)}
    _write_manifest(root, manifest)


def _refused(root: Path, *needles: str) -> ArtifactError:
    with pytest.raises(ArtifactError) as info:
        artifact_io.load(root)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert "\n" not in message  # one clear line
    return info.value


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def _snapshot(root: Path) -> dict[str, str]:
    return {p.name: sha256(p.read_bytes()) for p in sorted(root.iterdir())}


def _resave_arguments(root: Path) -> dict[str, Any]:
    """What `save` needs to write the artifact at `root` again."""
    loaded = artifact_io.load(root)
    manifest = loaded.manifest
    generated = {"format_version", "version", "created_at", "model_config", "libraries", "files"}
    return {
        "model": loaded.model,
        "vectorizer_state": json.loads((root / VECTORIZER).read_bytes()),
        "metadata_": {k: v for k, v in manifest.items() if k not in generated},
        "model_card": render_model_card,
    }


# --- round trip ---------------------------------------------------------------------------------


def test_save_then_load_gives_identical_probabilities(tmp_path: Path) -> None:
    texts = [*TEXTS, "orbit moon shuttle nasa", "inning pitcher bat", "polygon render shader"]
    config = FeatureConfig(ngram_range=(1, 2), min_df=1, max_df=1.0)
    vectorizer = build_vectorizer(config).fit(texts)
    torch.manual_seed(0)
    n = n_features(vectorizer)
    model = MLP(ModelConfig(n_features=n, n_labels=3, hidden=(8, 4))).eval()
    with torch.inference_mode():
        # The serving path's features (`encode`): the same numbers as `transform` up to the
        # order of each row's terms, which changes float32 sums in the last bit.
        expected = torch.softmax(model(to_torch(vectorizer.encode(texts))), 1).numpy()

    out = artifact_io.save(
        tmp_path / "m",
        model=model,
        vectorizer_state=vectorizer_state(vectorizer, config),
        metadata_={"name": "tiny", "labels": ["a", "b", "c"]},
    )
    loaded = Predictor(artifact_io.load(out))
    assert np.array_equal(loaded.predict_proba(texts), expected)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.artifact.model.state_dict()[name], value), name


def test_resaving_a_trained_model_keeps_its_probabilities(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    original = textclf.load(trained_model_dir)
    out = artifact_io.save(tmp_path / "again", **_resave_arguments(trained_model_dir))
    again = textclf.load(out)
    assert np.array_equal(again.predict_proba(TEXTS), original.predict_proba(TEXTS))
    assert again.labels == original.labels
    # Same files and labels give the same content hash, whenever they are written.
    assert again.ref.version == original.ref.version
    assert (
        _read_manifest(out)["files"][WEIGHTS] == _read_manifest(trained_model_dir)["files"][WEIGHTS]
    )


def test_format_1_artifacts_still_load(tmp_path: Path) -> None:
    """Format 2 only added the optional `wide` term; a format-1 folder must keep working."""
    texts = [*TEXTS, "orbit moon shuttle nasa"]
    config = FeatureConfig(min_df=1, max_df=1.0)
    vectorizer = build_vectorizer(config).fit(texts)
    model = MLP(ModelConfig(n_features=n_features(vectorizer), n_labels=2, hidden=(4,))).eval()
    out = artifact_io.save(
        tmp_path / "m",
        model=model,
        vectorizer_state=vectorizer_state(vectorizer, config),
        metadata_={"name": "old", "labels": ["a", "b"]},
    )
    expected = Predictor(artifact_io.load(out)).predict_proba(texts)
    manifest = _read_manifest(out)
    del manifest["model_config"]["wide"]
    manifest["format_version"] = 1
    manifest["version"] = artifact_io.content_version(
        manifest["files"], manifest["labels"], manifest["model_config"]
    )
    _write_manifest(out, manifest)
    assert np.array_equal(Predictor(artifact_io.load(out)).predict_proba(texts), expected)


def test_loading_twice_gives_identical_probabilities(trained_model_dir: Path) -> None:
    a, b = textclf.load(trained_model_dir), textclf.load(trained_model_dir)
    assert np.array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))


# --- manifest and model card -------------------------------------------------------------------


def test_manifest_describes_the_model(trained_model_dir: Path) -> None:
    manifest = _read_manifest(trained_model_dir)
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert manifest["name"] == "test-model"
    assert re.fullmatch(r"[0-9a-f]{16}", manifest["version"])
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.tzinfo is not None
    assert manifest["labels"] == sorted(TUTORIAL_CATEGORIES)
    assert manifest["model_config"] == {
        "n_features": manifest["model_config"]["n_features"],
        "n_labels": 3,
        "hidden": [32],
        "dropout": TrainConfig().dropout,  # the fixture keeps the default dropout
        "wide": manifest["training"]["blend"]["nb_weight"] > 0,
        "n_bigrams": manifest["model_config"]["n_bigrams"],
    }
    state = json.loads((trained_model_dir / VECTORIZER).read_bytes())
    assert 0 < len(state["terms"]) <= 20_000  # max_features caps the body's terms
    assert manifest["model_config"]["n_features"] >= len(state["terms"])
    # Word pairs are stored exactly when validation kept their term, one weight row per pair.
    n_bigrams = manifest["model_config"]["n_bigrams"]
    assert (manifest["training"]["blend"]["bigram_weight"] > 0) == (n_bigrams > 0)
    assert len((state["bigrams"] or {"pairs": []})["pairs"]) == n_bigrams

    training_config = manifest["training_config"]
    assert training_config["name"] == "test-model"
    assert training_config["train"]["hidden"] == [32]
    assert training_config["features"]["max_features"] == 20_000
    assert training_config["data"]["categories"] == list(TUTORIAL_CATEGORIES)

    assert manifest["data"]["source"] == "20newsgroups"
    assert set(manifest["data"]["sizes"]) == {"train", "val", "test"}
    for split in ("validation", "test"):
        metrics = manifest["metrics"][split]
        assert {"accuracy", "macro_f1", "n", "per_label"} <= set(metrics)
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert set(metrics["per_label"]) == set(TUTORIAL_CATEGORIES)
    history = manifest["training"]["history"]
    assert 1 <= manifest["training"]["best_epoch"] <= len(history)
    blend = manifest["training"]["blend"]
    assert blend["scale"] > 0 and blend["nb_weight"] >= 0
    assert blend["val_loss_after"] <= blend["val_loss_before"]
    sizes = manifest["data"]["sizes"]
    assert manifest["training"]["refit"] == {
        "epochs": manifest["training"]["best_epoch"],
        "examples": sizes["train"] + sizes["val"],
    }

    assert {"python", "textclf", "torch", "scikit-learn", "numpy", "scipy", "safetensors"} <= set(
        manifest["libraries"]
    )
    assert manifest["libraries"]["torch"] == metadata.version("torch")


def test_manifest_checksums_match_every_file(trained_model_dir: Path) -> None:
    files = _read_manifest(trained_model_dir)["files"]
    pictures = {LEARNING_CURVES, CONFUSION_MATRIX, RELIABILITY_DIAGRAM}
    assert set(files) == {WEIGHTS, VECTORIZER, MODEL_CARD, *pictures}
    on_disk = {p.name for p in trained_model_dir.iterdir()}
    assert on_disk == {*files, MANIFEST}
    for name, entry in files.items():
        data = (trained_model_dir / name).read_bytes()
        assert entry == {"sha256": sha256(data), "bytes": len(data)}


def test_model_card_summarises_the_manifest(trained_model_dir: Path) -> None:
    card = (trained_model_dir / MODEL_CARD).read_text("utf-8")
    manifest = _read_manifest(trained_model_dir)
    assert card.startswith("# Model card: test-model")
    assert manifest["version"] in card
    for label in manifest["labels"]:
        assert label in card
    assert "## Metrics" in card and "| test |" in card and "| validation |" in card
    assert "## Intended use and limits" in card
    assert "logit scale" in card and "word-pair" not in card  # this model dropped the pairs


def test_model_card_names_a_kept_word_pair_term(pairs_model_dir: Path) -> None:
    card = (pairs_model_dir / MODEL_CARD).read_text("utf-8")
    weight = _read_manifest(pairs_model_dir)["training"]["blend"]["bigram_weight"]
    assert f"word-pair naive Bayes weight ({weight:.3f})" in card


def test_artifact_holds_only_json_safetensors_and_markdown(trained_model_dir: Path) -> None:
    weights = (trained_model_dir / WEIGHTS).read_bytes()
    header_size = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8 : 8 + header_size])
    assert header["__metadata__"] == {"format": "pt"}
    json.loads((trained_model_dir / VECTORIZER).read_bytes())
    assert not weights.startswith(b"\x80")  # no pickle protocol marker
    assert not weights.startswith(b"PK")  # no torch.save zip


# --- atomic writes ------------------------------------------------------------------------------


def test_existing_out_is_refused_without_overwrite(model_copy: Path) -> None:
    before = _snapshot(model_copy)
    with pytest.raises(ArtifactError, match="already exists; pass --overwrite"):
        artifact_io.save(model_copy, **_resave_arguments(model_copy))
    assert _snapshot(model_copy) == before
    assert _leftovers(model_copy.parent, model_copy.name) == []


def test_overwrite_replaces_the_artifact(model_copy: Path) -> None:
    arguments = _resave_arguments(model_copy)
    arguments["metadata_"] = {**arguments["metadata_"], "name": "replacement"}
    old_created = _read_manifest(model_copy)["created_at"]
    artifact_io.save(model_copy, overwrite=True, **arguments)
    manifest = _read_manifest(model_copy)
    assert manifest["name"] == "replacement"
    assert manifest["created_at"] != old_created
    assert artifact_io.load(model_copy).manifest["name"] == "replacement"
    assert sorted(p.name for p in model_copy.parent.iterdir()) == [model_copy.name]


def test_success_leaves_no_temporary_folders(trained_model_dir: Path, tmp_path: Path) -> None:
    parent = tmp_path / "nested" / "parent"  # created on demand
    artifact_io.save(parent / "m", **_resave_arguments(trained_model_dir))
    assert sorted(p.name for p in parent.iterdir()) == ["m"]


def _failing_card(manifest: dict[str, Any]) -> str:
    raise RuntimeError("model card renderer broke")


def test_failed_save_leaves_nothing_behind(trained_model_dir: Path, tmp_path: Path) -> None:
    arguments = {**_resave_arguments(trained_model_dir), "model_card": _failing_card}
    with pytest.raises(RuntimeError, match="model card renderer broke"):
        artifact_io.save(tmp_path / "m", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_artifact(model_copy: Path) -> None:
    before = _snapshot(model_copy)
    arguments = {**_resave_arguments(model_copy), "model_card": _failing_card}
    with pytest.raises(RuntimeError):
        artifact_io.save(model_copy, overwrite=True, **arguments)
    assert _snapshot(model_copy) == before
    assert _leftovers(model_copy.parent, model_copy.name) == []


def test_failure_while_writing_files_removes_the_staging_folder(model_copy: Path) -> None:
    # A file that cannot be written inside the staging folder fails half-way through the write.
    before = _snapshot(model_copy)
    arguments = _resave_arguments(model_copy)
    with pytest.raises(FileNotFoundError):
        artifact_io.save(
            model_copy, overwrite=True, extra_files={"no-such-dir/x.json": b"{}"}, **arguments
        )
    assert _snapshot(model_copy) == before
    assert _leftovers(model_copy.parent, model_copy.name) == []
    artifact_io.load(model_copy)


# --- broken artifacts ---------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    error = _refused(tmp_path / "nope", "nope", "no such model folder")
    assert error.path == tmp_path / "nope"


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("hello")
    _refused(tmp_path / "model.txt", "model.txt", "no such model folder")


def test_missing_manifest(model_copy: Path) -> None:
    (model_copy / MANIFEST).unlink()
    error = _refused(model_copy, MANIFEST, "missing", "not a textclf model")
    assert error.path == model_copy / MANIFEST


def test_missing_weights(model_copy: Path) -> None:
    (model_copy / WEIGHTS).unlink()
    error = _refused(model_copy, WEIGHTS, "missing (listed in manifest.json)")
    assert error.path == model_copy / WEIGHTS


def test_missing_vectorizer(model_copy: Path) -> None:
    (model_copy / VECTORIZER).unlink()
    _refused(model_copy, VECTORIZER, "missing")


def test_weights_not_listed_in_the_manifest(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    del manifest["files"][WEIGHTS]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, f"lists no {WEIGHTS}")


def test_truncated_safetensors(model_copy: Path) -> None:
    data = (model_copy / WEIGHTS).read_bytes()
    (model_copy / WEIGHTS).write_bytes(data[: len(data) // 2])
    error = _refused(model_copy, WEIGHTS, "truncated", str(len(data)))
    assert error.path == model_copy / WEIGHTS


def test_truncated_safetensors_with_fixed_checksum(model_copy: Path) -> None:
    data = (model_copy / WEIGHTS).read_bytes()
    _replace_file(model_copy, WEIGHTS, data[: len(data) // 2])
    _refused(model_copy, WEIGHTS, "not a valid safetensors file")


def test_edited_vectorizer_fails_the_checksum(model_copy: Path) -> None:
    data = (model_copy / VECTORIZER).read_bytes()
    edited = data.replace(b'"sublinear_tf": true', b'"sublinear_tf": fals')  # same size
    assert edited != data and len(edited) == len(data)
    (model_copy / VECTORIZER).write_bytes(edited)
    error = _refused(model_copy, VECTORIZER, "checksum mismatch")
    assert error.path == model_copy / VECTORIZER


def test_edited_weights_fail_the_checksum(model_copy: Path) -> None:
    data = bytearray((model_copy / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF  # one bit pattern in one weight
    (model_copy / WEIGHTS).write_bytes(bytes(data))
    _refused(model_copy, WEIGHTS, "checksum mismatch")


def test_vectorizer_with_fixed_checksum_but_bad_state(model_copy: Path) -> None:
    state = json.loads((model_copy / VECTORIZER).read_bytes())
    state["idf"] = state["idf"][:-1]
    _replace_file(model_copy, VECTORIZER, json.dumps(state).encode())
    _refused(model_copy, VECTORIZER, "invalid vectorizer state", "idf values")


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ([1, 2, 3], "invalid vectorizer state"),
        ({"state_version": 1}, "invalid vectorizer state"),
        ({"state_version": 2, "terms": [], "idf": []}, "unsupported vectorizer state version"),
    ],
)
def test_vectorizer_state_of_the_wrong_shape(model_copy: Path, state: object, problem: str) -> None:
    _replace_file(model_copy, VECTORIZER, json.dumps(state).encode())
    _refused(model_copy, VECTORIZER, problem)


def test_vectorizer_state_with_invalid_settings(model_copy: Path) -> None:
    state = json.loads((model_copy / VECTORIZER).read_bytes())
    state["config"]["ngram_range"] = [2, 1]
    _replace_file(model_copy, VECTORIZER, json.dumps(state).encode())
    _refused(model_copy, VECTORIZER, "invalid vectorizer state", "ngram_range")


def test_vectorizer_that_is_not_json(model_copy: Path) -> None:
    _replace_file(model_copy, VECTORIZER, b"\xff\xfe not json")
    _refused(model_copy, VECTORIZER, "invalid vectorizer state")


def test_vectorizer_with_another_vocabulary_size(model_copy: Path) -> None:
    state = json.loads((model_copy / VECTORIZER).read_bytes())
    state["terms"], state["idf"] = state["terms"][:-1], state["idf"][:-1]
    _replace_file(model_copy, VECTORIZER, json.dumps(state).encode())
    _refused(model_copy, VECTORIZER, "terms but the model expects")


@pytest.mark.parametrize(
    "text",
    ["{not json", "", '{"format_version": 1', b"\xff\xfe\x00".decode("latin-1")],
)
def test_invalid_json_manifest(model_copy: Path, text: str) -> None:
    (model_copy / MANIFEST).write_text(text, "latin-1")
    error = _refused(model_copy, MANIFEST, "not valid JSON")
    assert error.path == model_copy / MANIFEST


def test_manifest_that_is_not_an_object(model_copy: Path) -> None:
    (model_copy / MANIFEST).write_text("[1, 2, 3]")
    _refused(model_copy, MANIFEST, "must be a JSON object")


@pytest.mark.parametrize("version", [None, "1", 1.0])
def test_manifest_without_an_integer_format_version(model_copy: Path, version: object) -> None:
    manifest = _read_manifest(model_copy)
    manifest["format_version"] = version
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "format_version")


def test_newer_format_version_says_upgrade(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["format_version"] = FORMAT_VERSION + 1
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, f"format version {FORMAT_VERSION + 1}", "upgrade textclf")


@pytest.mark.parametrize("field", ["name", "version", "labels", "model_config", "files"])
def test_manifest_missing_a_field(model_copy: Path, field: str) -> None:
    manifest = _read_manifest(model_copy)
    del manifest[field]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, repr(field))


def test_extra_label_in_the_manifest_only(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["labels"] = [*manifest["labels"], "talk.politics.misc"]  # and nothing else
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "4 labels listed but the model has 3 outputs")


def test_missing_label_in_the_manifest_only(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["labels"] = manifest["labels"][:2]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "2 labels listed but the model has 3 outputs")


def test_duplicate_labels(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["labels"] = [manifest["labels"][0]] * 3
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "labels listed")


def test_reordered_labels_in_the_manifest_only(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["labels"] = manifest["labels"][::-1]  # same count: every prediction gets renamed
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "labels, model_config or file checksums")


def test_labels_that_are_not_strings(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["labels"] = [1, 2, 3]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "'labels' must be a list of strings")


def test_consistent_manifest_with_wrong_label_count_fails_on_the_weights(
    model_copy: Path,
) -> None:
    # Labels and model_config agree with each other (4 outputs) and every checksum is right:
    # only the shapes in the weights file tell that the model has 3 outputs.
    manifest = _read_manifest(model_copy)
    manifest["labels"] = [*manifest["labels"], "talk.politics.misc"]
    manifest["model_config"]["n_labels"] = 4
    _write_manifest(model_copy, manifest)
    _refused(model_copy, WEIGHTS, "weights do not match model_config", "output.weight")


def test_manifest_with_another_hidden_width_fails_on_the_weights(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["model_config"]["hidden"] = [64]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, WEIGHTS, "weights do not match model_config")


@pytest.mark.parametrize(
    ("field", "value"),
    [("dropout", 2.0), ("n_labels", 1), ("hidden", []), ("hidden", 32), ("n_features", "many")],
)
def test_invalid_model_config(model_copy: Path, field: str, value: object) -> None:
    manifest = _read_manifest(model_copy)
    manifest["model_config"][field] = value
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "invalid model_config")


def test_model_config_with_unknown_fields(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["model_config"]["activation"] = "gelu"
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "invalid model_config")


@pytest.mark.parametrize(
    "name",
    [
        "../model.safetensors",
        "../../etc/passwd",
        "sub/../../escape.json",
        "sub/file.json",
        "..",
        ".",
        "",
        "..\\windows.json",
    ],
)
def test_file_names_escaping_the_folder(model_copy: Path, name: str) -> None:
    outside = model_copy.parent / "model.safetensors"
    shutil.copy(model_copy / WEIGHTS, outside)  # a real file there, so only the name check stops it
    manifest = _read_manifest(model_copy)
    manifest["files"][name] = manifest["files"][WEIGHTS]
    _write_manifest(model_copy, manifest)
    error = _refused(model_copy, MANIFEST)
    assert "escape the model folder" in str(error) or "invalid file name" in str(error)


@pytest.mark.parametrize("absolute", ["/etc/passwd", "//server/share/x"])
def test_absolute_file_names(model_copy: Path, absolute: str) -> None:
    manifest = _read_manifest(model_copy)
    manifest["files"][absolute] = {"sha256": "0" * 64, "bytes": 0}
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "would escape the model folder", absolute)


def test_absolute_path_to_the_real_weights(model_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.safetensors"
    shutil.copy(model_copy / WEIGHTS, elsewhere)
    manifest = _read_manifest(model_copy)
    manifest["files"][str(elsewhere)] = manifest["files"].pop(WEIGHTS)
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "would escape the model folder")


def test_files_that_is_not_a_mapping(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["files"] = [WEIGHTS, VECTORIZER]
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "'files' must map file names to checksums")


def test_file_entry_without_a_checksum(model_copy: Path) -> None:
    manifest = _read_manifest(model_copy)
    manifest["files"][WEIGHTS] = {"bytes": 10}
    _write_manifest(model_copy, manifest)
    _refused(model_copy, MANIFEST, "has no sha256", WEIGHTS)


class _Exploit:
    """Unpickling this calls `open(marker, "w")`: the marker file proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_the_exploit_payload_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Exploit(marker))).close()  # the point of the test
    assert marker.exists()


def test_pickle_swapped_in_for_the_weights_is_never_unpickled(
    model_copy: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"input.weight": _Exploit(marker)})
    _replace_file(model_copy, WEIGHTS, payload)  # checksum and size now "match"
    error = _refused(model_copy, WEIGHTS, "not a valid safetensors file")
    assert error.path == model_copy / WEIGHTS
    assert not marker.exists()
    with pytest.raises(ArtifactError):
        textclf.load(model_copy)
    assert not marker.exists()


def test_torch_save_swapped_in_for_the_weights_is_refused(model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"input.weight": torch.zeros(2, 2), "x": _Exploit(marker)}, buffer)
    _replace_file(model_copy, WEIGHTS, buffer.getvalue())
    _refused(model_copy, WEIGHTS, "not a valid safetensors file")
    assert not marker.exists()


def test_pickle_swapped_in_for_the_vectorizer_is_refused(model_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _replace_file(model_copy, VECTORIZER, pickle.dumps(_Exploit(marker)))
    _refused(model_copy, VECTORIZER, "invalid vectorizer state")
    assert not marker.exists()


def test_textclf_load_reports_artifact_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(textclf.ArtifactError, match="not a textclf model"):
        textclf.load(tmp_path)


_UNSAFE = re.compile(
    r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)\b"
    r"|\bpickle\.loads?\(|\bjoblib\.|\btorch\.load\(|\bnp\.load\(|allow_pickle\s*=\s*True"
    r"|weights_only\s*=\s*False",
    re.MULTILINE,
)


@pytest.mark.parametrize("package", ["textclf", "service", "training"])
def test_no_pickle_in_the_source(package: str) -> None:
    root = REPO / package
    if not root.is_dir():
        pytest.skip(f"{package}/ is not in this checkout")
    sources = sorted(root.rglob("*.py"))
    assert sources, f"no Python files under {root}"
    offenders = [
        f"{path.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
        for path in sources
        for text in [path.read_text("utf-8")]
        for m in _UNSAFE.finditer(text)
    ]
    assert offenders == []


def test_the_pickle_grep_would_catch_offenders() -> None:
    samples = [
        "import pickle",
        "from joblib import load",
        "state = torch.load(path)",
        "x = pickle.loads(data)",
        "np.load(f, allow_pickle=True)",
    ]
    for sample in samples:
        assert _UNSAFE.search(sample), sample
    assert not _UNSAFE.search('"""No pickle anywhere: JSON and safetensors only."""')


def test_a_model_with_word_pairs_serves_their_term(pairs_model_dir: Path) -> None:
    """Saved, loaded and served: the pair columns add exactly `pairs @ bigrams` to the logits
    of the same model without them."""
    manifest = _read_manifest(pairs_model_dir)
    n_bigrams = manifest["model_config"]["n_bigrams"]
    assert n_bigrams > 0 and manifest["training"]["blend"]["bigram_weight"] > 0
    predictor = textclf.load(pairs_model_dir)
    vectorizer, model = predictor.artifact.vectorizer, predictor.artifact.model
    assert vectorizer.n_bigrams == n_bigrams and model.bigrams is not None
    texts = ["the space station orbits the earth", "a hard drive for my mac", "", "zzz"]
    x = vectorizer.transform(texts)
    words = x.shape[1] - n_bigrams
    with_pairs = predict_logits(model, x)
    pairs = x[:, words:] @ model.bigrams.numpy()
    assert np.abs(pairs).max() > 0  # the texts do contain known pairs
    np.testing.assert_allclose(
        predictor.predict_proba(texts), softmax(with_pairs, axis=1), atol=1e-6
    )
    model.bigrams.zero_()  # this loaded copy only
    np.testing.assert_allclose(with_pairs - predict_logits(model, x), pairs, atol=1e-4)
