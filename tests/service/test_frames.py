"""The frames between a worker and its scoring child carry every text and error unchanged."""

from __future__ import annotations

import struct

import pytest

from service.frames import decode_jobs, decode_reply, encode_jobs, encode_reply

TEXTS = [
    "The shuttle launch was delayed by weather",
    "",
    "naïve café 🚀 ロケット",
    'Subject: Re: orbit\n\nnul\x00byte and a \\ backslash "quoted"',
]


def test_batch_frames_carry_any_text_unchanged() -> None:
    jobs = [(TEXTS, 3, 0), ([], 1, 10), (["lone \ud800 surrogate", "x" * 70_000], 20, 100)]
    assert decode_jobs(encode_jobs(jobs)) == jobs


@pytest.mark.parametrize("cut", [1, 9, -1])
def test_a_truncated_batch_frame_is_an_error_not_a_wrong_batch(cut: int) -> None:
    frame = encode_jobs([(TEXTS, 3, 0)])
    with pytest.raises((ValueError, struct.error)):
        decode_jobs(frame[:cut])


def test_replies_carry_each_requests_own_error_beside_the_others_answers() -> None:
    outcomes = [
        (["sci.space"], b'[{"label":"sci.space"}]'),
        ValueError("cannot classify this"),
        (["a", "b"], b"[1,2]"),
        KeyError("odd"),
    ]
    first, error, last, other = decode_reply(encode_reply(outcomes))  # type: ignore[arg-type]
    assert first == outcomes[0] and last == outcomes[2]
    assert isinstance(error, ValueError) and str(error) == "cannot classify this"
    assert isinstance(other, RuntimeError) and "odd" in str(other)  # unknown kinds: RuntimeError
