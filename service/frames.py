"""The frames a worker and its scoring child exchange (`service.process_scorer`).

Length-prefixed frames, and no pickle, so nothing that arrives can run code. A batch goes as its
texts' UTF-8 bytes behind a table of sizes (JSON would escape and unescape every text, ~10 us a
post in the child); it comes back as a JSON header and the predictions' JSON bytes as they will
be sent, never re-encoded.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from service.scoring import Job, Outcome

U64 = struct.Struct("!Q")  # a payload's length, and each integer of a batch frame
# Exceptions a child may report, rebuilt by type name; anything else arrives as a RuntimeError.
_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def encode_jobs(jobs: list[Job]) -> bytes:
    """A batch as one frame: the number of jobs, each job's (top_k, explain_terms, number of
    texts), each text's size in bytes, then the texts' UTF-8 back to back ("surrogatepass": a
    JSON body can carry lone surrogates)."""
    blobs = [text.encode("utf-8", "surrogatepass") for texts, _, _ in jobs for text in texts]
    words = [len(jobs)]
    for texts, top_k, explain_terms in jobs:
        words += (top_k, explain_terms, len(texts))
    words += map(len, blobs)
    return struct.pack(f"!{len(words)}Q", *words) + b"".join(blobs)


def decode_jobs(frame: bytes) -> list[Job]:
    """`encode_jobs` undone; a malformed frame raises ValueError or struct.error."""
    (n_jobs,) = U64.unpack_from(frame)
    spec = struct.unpack_from(f"!{3 * n_jobs}Q", frame, U64.size)
    n_texts = sum(spec[2::3])
    offset = U64.size * (1 + 3 * n_jobs)
    sizes = struct.unpack_from(f"!{n_texts}Q", frame, offset)
    start = offset + U64.size * n_texts
    if start + sum(sizes) != len(frame):
        raise ValueError("batch frame: the text sizes do not add up to the frame's length")
    texts = []
    for size in sizes:
        texts.append(str(frame[start : start + size], "utf-8", "surrogatepass"))
        start += size
    jobs, first = [], 0
    for top_k, explain_terms, count in zip(spec[::3], spec[1::3], spec[2::3], strict=True):
        jobs.append((texts[first : first + count], top_k, explain_terms))
        first += count
    return jobs


def encode_reply(outcomes: list[Outcome]) -> bytes:
    """A JSON line (per job: its labels and the length of its predictions JSON, or its error),
    then the predictions, back to back."""
    header: dict[str, list[Any]] = {"labels": [], "sizes": [], "errors": []}
    bodies = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            labels, body, error = None, b"", [type(outcome).__name__, str(outcome)]
        else:
            (labels, body), error = outcome, None
        header["labels"].append(labels)
        header["sizes"].append(len(body))
        header["errors"].append(error)
        bodies.append(body)
    return b"".join([json.dumps(header).encode(), b"\n", *bodies])


def encode_failure(exc: Exception) -> bytes:
    """The reply for a batch the child could not run at all."""
    return json.dumps({"error": [type(exc).__name__, str(exc)]}).encode() + b"\n"


def decode_reply(reply: bytes) -> list[Outcome]:
    end = reply.index(b"\n")
    header = json.loads(reply[:end])
    if "error" in header:  # the child could not run the batch at all
        raise _error(*header["error"])
    outcomes: list[Outcome] = []
    start = end + 1
    for labels, size, error in zip(
        header["labels"], header["sizes"], header["errors"], strict=True
    ):
        outcomes.append(_error(*error) if error else (labels, reply[start : start + size]))
        start += size
    return outcomes


def _error(kind: str, message: str) -> Exception:
    return _ERRORS.get(kind, RuntimeError)(message)


def recv(sock: socket.socket) -> bytes:
    """One frame from a blocking socket; EOFError if the other end closed."""
    (size,) = U64.unpack(_recv_exactly(sock, U64.size))
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(U64.pack(len(payload)) + payload)
