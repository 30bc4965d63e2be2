"""``logs()`` decodes the log as it streams in: the same text as decoding it whole.

The wire reads a log chunk by chunk into one growing str (``wire._HeadText``) instead of
holding the bytes and then decoding them, so every chunk boundary is a place where a
multi-byte character, a CRLF or an invalid byte is split in two. The oracle is the path
it replaced: the body read as bytes by ``wire._TextReader`` (still the reader of error
bodies and of ``tail=``), then httpx's ``response.text``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest

from canfar_widgets import sessions
from canfar_widgets.sessions import TRUNCATED_MARK, AsyncSession, Session
from canfar_widgets.wire import _TRUNCATED, _HeadText, _TextReader

URL = "https://platform.test/skaha/v1"


class Chunks(httpx.AsyncByteStream):
    """A response body delivered in exactly these chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def response(chunks: list[bytes], content_type: str = "text/plain") -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": content_type},
        stream=Chunks(chunks),
        request=httpx.Request("GET", URL + "/session/a1?view=logs"),
    )


def streamed(chunks: list[bytes], limit: int, content_type: str = "text/plain") -> tuple[str, bool]:
    answer = response(chunks, content_type)
    asyncio.run(_HeadText(limit, mark="")(answer))
    return answer.extensions["canfar_widgets.text"], bool(answer.extensions.get(_TRUNCATED))


def whole(chunks: list[bytes], limit: int, content_type: str = "text/plain") -> tuple[str, bool]:
    """Today's answer before streaming: kept bytes, then decoded whole."""
    answer = response(chunks, content_type)
    asyncio.run(_TextReader(limit, tail=False)(answer))
    return answer.text, bool(answer.extensions.get(_TRUNCATED))


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


SAMPLE = ("plain line\r\naccents: é è ü\r\nCJK: 望遠鏡\nemoji: 🔭🌌\r\n\r\ntab\tand end").encode()


def test_every_split_of_a_multibyte_and_crlf_log_gives_the_same_text():
    # Every place a single cut can fall, and every cut into 1-byte chunks: characters of
    # 2, 3 and 4 bytes and CRLFs are all split somewhere.
    for cut in range(len(SAMPLE) + 1):
        chunks = split(SAMPLE, [cut])
        assert streamed(chunks, 2**20) == (SAMPLE.decode(), False), cut
    assert streamed([bytes([b]) for b in SAMPLE], 2**20) == (SAMPLE.decode(), False)
    assert "\r\n" in streamed(split(b"a\r\nb", [2]), 100)[0]  # CR | LF stays one CRLF


@pytest.mark.parametrize(
    "body",
    [
        b"ok \xff\xfe bad bytes\n",  # never valid in UTF-8
        b"lone continuation \x80\x80 here",
        b"cut short at the end \xe6\x9c",  # an incomplete 3-byte character at EOF
        b"overlong \xc0\xaf and surrogate \xed\xa0\x80",
        b"\xf0\x9f\x94",  # nothing but an incomplete emoji
    ],
)
def test_invalid_bytes_are_replaced_as_today_wherever_the_chunks_split(body):
    expected = whole([body], 2**20)
    assert expected[0] == body.decode("utf-8", errors="replace")
    for cut in range(len(body) + 1):
        assert streamed(split(body, [cut]), 2**20) == expected, cut


def test_a_cut_at_the_limit_matches_todays_answer_at_every_limit_and_split():
    # The limit falls inside characters, inside CRLFs, on invalid bytes; the chunks split
    # around it in every way, including a boundary just before the limit (the bytes the
    # cut may drop then lie in the previous chunk).
    body = SAMPLE + b" \xf0\x80 \xe6\x9c\xab\xff" + SAMPLE
    for limit in range(len(body) + 2):
        for cut in {0, 1, 2, 3, limit - 3, limit - 2, limit - 1, limit, limit + 1}:
            if 0 <= cut <= len(body):
                chunks = split(body, [cut])
                assert streamed(chunks, limit) == whole(chunks, limit), (limit, cut)


def test_random_chunkings_of_random_bytes_match_todays_answer():
    rng = random.Random(16)
    alphabet = [b"a", b"\n", b"\r\n", "é".encode(), "望".encode(), "🔭".encode(), b"\xff", b"\x80"]
    for _ in range(300):
        body = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        cuts = [rng.randrange(0, len(body) + 1) for _ in range(rng.randrange(0, 6))]
        limit = rng.randrange(0, len(body) + 3)
        chunks = split(body, cuts)
        assert streamed(chunks, limit) == whole(chunks, limit), (body, cuts, limit)


def test_the_answers_charset_is_honoured():
    body = "café\n".encode("latin-1")
    chunks = split(body, [3])
    assert streamed(chunks, 100, "text/plain; charset=latin-1") == ("café\n", False)
    assert whole(chunks, 100, "text/plain; charset=latin-1") == ("café\n", False)


# -- through logs(), sync and async ------------------------------------------------------------


def serving(chunks: list[bytes]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: response(list(chunks)))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_logs_gives_the_streamed_text_and_the_cap_marker(flavour, monkeypatch):
    text = "line é 🔭\r\n" * 5000
    body = text.encode()
    chunks = split(body, list(range(7, len(body), 4093)))  # boundaries all over the characters
    monkeypatch.setattr(sessions, "LOG_LIMIT", 2**20)
    long = body * (2**20 // len(body) + 1)  # just over 1 MiB
    long_chunks = split(long, list(range(5, len(long), 65521)))
    mark = TRUNCATED_MARK.format(what="log", limit="1 MiB")

    if flavour == "sync":
        with Session(url=URL, token="t", transport=serving(chunks)) as session:
            small = session.logs("a1")["a1"]
        with Session(url=URL, token="t", transport=serving(long_chunks)) as session:
            cut = session.logs("a1")["a1"]
    else:

        async def main() -> tuple[str, str]:
            async with AsyncSession(url=URL, token="t", transport=serving(chunks)) as session:
                small = (await session.logs("a1"))["a1"]
            async with AsyncSession(url=URL, token="t", transport=serving(long_chunks)) as session:
                return small, (await session.logs("a1"))["a1"]

        small, cut = asyncio.run(main())
    assert small == text
    assert cut.endswith(mark)
    kept = cut[: -len(mark)]
    assert 2**20 - 4 < len(kept.encode()) <= 2**20
    assert long.decode().startswith(kept)  # the beginning, whole characters only


def test_a_log_just_under_the_cap_costs_about_its_own_size_in_memory():
    # The point of streaming: no moment holds the log as bytes and as text (that was 2.5-3x
    # the log). Memory, not time: tracemalloc counts the bytes that were alive at once.
    size = 8 * 2**20
    block = b"x" * 99 + b"\n"
    chunks = [block * 655] * (size // (100 * 655)) + [block * 10]
    total = sum(map(len, chunks))
    with Session(url=URL, token="t", transport=serving(chunks)) as session:
        session.logs("a1")  # warm: the client, imports
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            text = session.logs("a1")["a1"]
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert len(text) == total
    assert peak < 1.5 * total, f"peak {peak / total:.2f}x the log"
