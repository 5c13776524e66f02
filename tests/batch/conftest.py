"""Texts for the batch tests: real 20 Newsgroups posts, cut short so scoring stays quick."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def posts(archive: Path) -> list[str]:
    """500 test-split posts (first 600 characters), in archive order."""
    texts = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("20news-bydate-test/"):
                handle = tar.extractfile(member)
                assert handle is not None
                texts.append(handle.read().decode("latin-1")[:600])
                if len(texts) == 500:
                    break
    return texts
