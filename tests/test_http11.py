"""The sans-IO HTTP/1.1 layer (``pusher_fast._http11``), specified without any network.

``ResponseReader`` reads one answer from the bytes fed to it (``feed(b"")`` is the end of the
connection) and raises nothing but ``ProtocolError``; ``ResponseHeaders`` is its case-insensitive
view of the fields; ``RequestEncoder`` writes the bytes of one request, refusing anything that
could end or split the request line or a header, and what it writes parses back with httptools'
request parser.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httptools
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pusher_fast
import pusher_fast._http11 as http11
from pusher_fast._http11 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    USER_AGENT,
    ProtocolError,
    RequestEncoder,
    ResponseHeaders,
    ResponseReader,
    host_header,
    is_safe_target,
)
from pusher_fast._request import Request
from pusher_fast.version import VERSION

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OK_2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Request-Id: 7\r\n\r\n"
    b"5;name=value;flag\r\nhello\r\n"
    b"1\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b'0;last="yes"\r\n\r\n'
)
CHUNKED_WITH_TRAILERS = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
)
HTTP10_KEEP_ALIVE = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
INTERIM_THEN_FINAL = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"
UNTIL_EOF = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body runs to the end"

#: Answers whose end is known without the end of the connection.
FRAMED_ANSWERS = {
    "content-length": OK_2,
    "chunked": CHUNKED,
    "chunked-trailers": CHUNKED_WITH_TRAILERS,
    "http10-keep-alive": HTTP10_KEEP_ALIVE,
    "interim-then-final": INTERIM_THEN_FINAL,
    "no-content": NO_CONTENT,
}
#: Every answer above, plus one delimited by the end of the connection.
ALL_ANSWERS = {**FRAMED_ANSWERS, "until-eof": UNTIL_EOF}


def read(*pieces: bytes, eof: bool = False) -> ResponseReader:
    """A reader fed ``pieces`` (then the end of the connection if ``eof``); asserts it is done."""
    reader = ResponseReader()
    done = False
    for piece in pieces:
        done = reader.feed(piece)
    if eof:
        done = reader.feed(b"")
    assert done
    assert reader.complete
    return reader


def outcome(reader: ResponseReader) -> tuple[Any, ...]:
    return reader.status, reader.body, list(reader.fields), reader.keep_alive, reader.complete


def feed_split(data: bytes, cuts: list[int], eof: bool) -> ResponseReader:
    """``data`` fed in the pieces that ``cuts`` (positions) make, then EOF if ``eof``."""
    bounds = [0, *sorted(set(cuts)), len(data)]
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    return read(*pieces, eof=eof)


def chunked_answer(body: bytes, sizes: list[int], extensions: bool = False) -> bytes:
    """``body`` in the chunked encoding, cut into chunks of ``sizes`` (the rest in one chunk)."""
    out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    pos = 0
    for index, size in enumerate([*sizes, len(body)]):
        chunk = body[pos : pos + size]
        if not chunk:
            continue
        pos += len(chunk)
        ext = b";i=%d" % index if extensions else b""
        out.append(b"%x%s\r\n%s\r\n" % (len(chunk), ext, chunk))
        if pos == len(body):
            break
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def refused(*pieces: bytes, eof: bool = False) -> ProtocolError:
    """The ProtocolError that feeding ``pieces`` (and EOF) raises; fails on any other outcome."""
    reader = ResponseReader()
    with pytest.raises(ProtocolError) as info:
        for piece in pieces:
            if reader.feed(piece):
                break
        if eof:
            reader.feed(b"")
    return info.value


# -- ResponseReader: whole answers ----------------------------------------------------------------


class TestCompleteAnswers:
    """An answer is complete when its framing says so; status, headers and body are kept."""

    def test_content_length(self) -> None:
        """Content-Length says where the body ends; HTTP/1.1 keeps the connection."""
        reader = read(OK_2)
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"{}", True)
        assert reader.headers["Content-Length"] == "2"

    def test_zero_content_length(self) -> None:
        """Content-Length: 0 completes the answer at the end of the head."""
        reader = read(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        assert (reader.status, reader.body, reader.keep_alive) == (404, b"", True)

    def test_no_reason_phrase(self) -> None:
        """The reason phrase may be missing."""
        assert read(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").status == 200

    def test_large_body_in_one_piece(self) -> None:
        """A body of many kilobytes in one piece is read whole."""
        body = bytes(range(256)) * 1000
        reader = read(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert reader.body == body

    def test_feed_returns_false_until_complete(self) -> None:
        """``feed`` is False while the answer is incomplete and True on the byte that ends it."""
        reader = ResponseReader()
        assert reader.feed(OK_2[:-1]) is False
        assert reader.complete is False
        assert reader.feed(OK_2[-1:]) is True
        assert reader.complete is True

    def test_chunked_with_extensions(self) -> None:
        """Chunked bodies are decoded; chunk extensions are ignored."""
        reader = read(CHUNKED)
        assert reader.body == b"hello 0123456789"
        assert reader.keep_alive is True
        assert reader.headers["x-request-id"] == "7"

    def test_chunked_with_trailers(self) -> None:
        """Trailer fields after the last chunk are accepted and do not touch the body."""
        reader = read(CHUNKED_WITH_TRAILERS)
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"abc", True)
        assert reader.headers["transfer-encoding"] == "chunked"

    def test_trailers_are_not_merged_into_headers(self) -> None:
        """A trailer field does not show up as (or change) a header field."""
        reader = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nRetry-After: 120\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert "retry-after" not in reader.headers
        assert reader.headers["transfer-encoding"] == "chunked"

    def test_chunked_empty_body(self) -> None:
        """A chunked answer may have no data chunk at all."""
        reader = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert (reader.status, reader.body) == (200, b"")

    def test_chunked_uppercase_hex_size(self) -> None:
        """Chunk sizes are hexadecimal, either case."""
        body = b"x" * 0xAB
        reader = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nAB\r\n%s\r\n0\r\n\r\n" % body
        )
        assert reader.body == body

    @pytest.mark.parametrize("status", [204, 304])
    def test_no_body_statuses(self, status: int) -> None:
        """204 and 304 never have a body, even with a Content-Length."""
        reader = read(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status)
        assert (reader.status, reader.body, reader.keep_alive) == (status, b"", True)

    def test_body_as_bytes_when_split(self) -> None:
        """``body`` joins the pieces the body came in."""
        reader = read(OK_2[:-1], OK_2[-1:])
        assert reader.body == b"{}"
        assert isinstance(reader.body, bytes)


class TestKeepAlive:
    """``keep_alive`` says whether the connection may carry another request."""

    @pytest.mark.parametrize(
        ("answer", "keep_alive"),
        [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", False),
        ],
        ids=[
            "1.1-default",
            "1.1-close",
            "1.1-Close",
            "1.1-keep-alive",
            "1.0-default",
            "1.0-keep-alive",
            "1.0-Keep-Alive",
            "204-close",
        ],
    )
    def test_connection_header_and_version(self, answer: bytes, keep_alive: bool) -> None:
        """HTTP/1.1 keeps the connection unless ``close``; HTTP/1.0 only with ``keep-alive``."""
        reader = read(answer)
        assert reader.status in (200, 204)
        assert reader.keep_alive is keep_alive

    def test_http10_keep_alive_body(self) -> None:
        """An HTTP/1.0 answer with keep-alive and a Content-Length is read like HTTP/1.1."""
        reader = read(HTTP10_KEEP_ALIVE)
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"abc", True)


class TestNextAnswer:
    """``next_answer()``: the reader of a kept-alive connection's next answer (the bulk
    engine's one reader per connection): itself, reset, after a complete kept-alive
    answer; a new reader otherwise."""

    @pytest.mark.parametrize("first", list(FRAMED_ANSWERS), ids=list(FRAMED_ANSWERS))
    @pytest.mark.parametrize("second", list(ALL_ANSWERS), ids=list(ALL_ANSWERS))
    def test_reused_reader_reads_the_next_answer_as_a_new_one(
        self, first: str, second: str
    ) -> None:
        reader = read(FRAMED_ANSWERS[first])
        assert reader.keep_alive
        again = reader.next_answer()
        assert again is reader
        assert not again.complete and not again.started and again.fields == []
        data, eof = ALL_ANSWERS[second], second == "until-eof"
        done = again.feed(data)
        if eof:
            done = again.feed(b"")
        assert done
        assert outcome(again) == outcome(read(data, eof=eof))

    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            OK_2[:-1],  # incomplete
        ],
        ids=["close", "1.0-default", "incomplete"],
    )
    def test_a_new_reader_when_the_connection_cannot_carry_another(self, answer: bytes) -> None:
        reader = ResponseReader()
        reader.feed(answer)
        fresh = reader.next_answer()
        assert fresh is not reader and not fresh.started
        assert fresh.feed(OK_2) and fresh.status == 200

    def test_a_new_reader_after_bytes_following_the_answer(self) -> None:
        reader = ResponseReader()
        assert reader.feed(OK_2 + b"HTTP/1.1 200 OK\r\n")  # the answer stands
        assert reader.next_answer() is not reader

    def test_limits_count_each_answer_alone(self) -> None:
        """The head and header-count limits start again with each answer."""
        answer = TestHeaderCountLimit.answer(MAX_HEADERS)
        reader = read(answer)
        for _ in range(3):
            reader = reader.next_answer()
            assert reader.feed(answer)
            assert len(reader.headers) == MAX_HEADERS
        reader = reader.next_answer()
        with pytest.raises(ProtocolError):
            reader.feed(TestHeaderCountLimit.answer(MAX_HEADERS + 1))


class TestBodyUntilEndOfConnection:
    """Without Content-Length or chunked, the body runs to the end of the connection."""

    def test_eof_completes(self) -> None:
        """``feed(b"")`` completes the answer; the connection cannot be used again."""
        reader = ResponseReader()
        assert reader.feed(UNTIL_EOF) is False
        assert reader.feed(b" of it") is False
        assert reader.feed(b"") is True
        assert (reader.status, reader.body) == (200, b"the body runs to the end of it")
        assert reader.keep_alive is False

    def test_eof_right_after_head(self) -> None:
        """An empty body delimited by EOF is an answer."""
        reader = read(b"HTTP/1.1 500 Oops\r\n\r\n", eof=True)
        assert (reader.status, reader.body, reader.keep_alive) == (500, b"", False)

    def test_http10_without_length(self) -> None:
        """HTTP/1.0, no length: read to EOF, even when it asked for keep-alive."""
        reader = read(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nabc", eof=True)
        assert (reader.body, reader.keep_alive) == (b"abc", False)

    def test_transfer_encoding_not_chunked(self) -> None:
        """A Transfer-Encoding without chunked runs to the end of the connection."""
        reader = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", eof=True)
        assert (reader.body, reader.keep_alive) == (b"abc", False)

    def test_chunked_not_last_runs_to_eof(self) -> None:
        """``Transfer-Encoding: chunked, gzip`` is not chunked framing: the body runs to EOF."""
        reader = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc", eof=True)
        assert (reader.body, reader.keep_alive) == (b"abc", False)


class TestInterimAnswers:
    """1xx answers before the final one are skipped; a protocol switch is refused."""

    @pytest.mark.parametrize(
        "interim",
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 102 Processing\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
        ],
        ids=["100", "102", "103", "100-twice"],
    )
    def test_interim_skipped(self, interim: bytes) -> None:
        """The final answer's status, headers and body are what the reader holds."""
        reader = read(interim + OK_2)
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"{}", True)
        assert dict(reader.headers) == {"content-length": "2"}

    def test_interim_alone_is_not_an_answer(self) -> None:
        """After only a 1xx the reader still waits."""
        reader = ResponseReader()
        assert reader.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n") is False
        assert reader.complete is False

    def test_eof_after_interim(self) -> None:
        """The connection ending after an interim answer is an error."""
        error = refused(b"HTTP/1.1 100 Continue\r\n\r\n", eof=True)
        assert "closed" in str(error)

    def test_interim_fields_do_not_count_toward_the_final_limit(self) -> None:
        """Each answer's fields are counted on their own; the interim ones are dropped."""
        hints = b"".join(b"Link: </%d>\r\n" % i for i in range(MAX_HEADERS))
        final = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1))
        reader = read(
            b"HTTP/1.1 103 Early Hints\r\n" + hints + b"\r\n"
            b"HTTP/1.1 200 OK\r\n" + final + b"Content-Length: 0\r\n\r\n"
        )
        assert len(reader.fields) == MAX_HEADERS
        assert "link" not in reader.headers

    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n",
        ],
        ids=["websocket", "bare", "after-100"],
    )
    def test_101_refused(self, answer: bytes) -> None:
        """101 Switching Protocols is a ProtocolError naming the switch."""
        assert "switch" in str(refused(answer))

    def test_upgrade_header_on_200_is_ignored(self) -> None:
        """Upgrade headers on a final 200 do not switch anything."""
        reader = read(
            b"HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert (reader.status, reader.body) == (200, b"{}")


class TestEndOfConnection:
    """The connection ending anywhere but after a complete answer is a ProtocolError."""

    def test_eof_before_anything(self) -> None:
        """No byte at all: an error, and the reader never started."""
        reader = ResponseReader()
        with pytest.raises(ProtocolError, match="in the head"):
            reader.feed(b"")
        assert reader.started is False

    @pytest.mark.parametrize("cut", [1, 5, 12, 17, 30, len(OK_2) - 3])
    def test_eof_in_head(self, cut: int) -> None:
        """Cut anywhere in the status line or headers."""
        assert "in the head" in str(refused(OK_2[:cut], eof=True))

    def test_eof_in_content_length_body(self) -> None:
        """Fewer body bytes than Content-Length."""
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"
        assert "in the body" in str(refused(answer, eof=True))

    @pytest.mark.parametrize(
        "tail",
        [
            b"",
            b"5",
            b"5\r\n",
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r\n",
            b"5\r\nhello\r\n0\r\n",
        ],
    )
    def test_eof_in_chunked_body(self, tail: bytes) -> None:
        """Anywhere in the chunks, up to the final empty line."""
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert "in the body" in str(refused(head + tail, eof=True))

    def test_eof_after_complete_changes_nothing(self) -> None:
        """EOF after a complete answer is harmless: still complete, same answer."""
        reader = read(OK_2)
        assert reader.feed(b"") is True
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"{}", True)


class TestBytesAfterTheAnswer:
    """We never pipeline: bytes after an answer end the connection, never the answer."""

    @pytest.mark.parametrize(
        "extra",
        [b"garbage", b"HTT", b"H", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"\x00\xff"],
        ids=["garbage", "partial-HTT", "one-byte", "second-answer", "binary"],
    )
    @pytest.mark.parametrize("answer", [OK_2, CHUNKED, NO_CONTENT], ids=["cl", "chunked", "204"])
    def test_same_feed(self, answer: bytes, extra: bytes) -> None:
        """In the same piece: the answer stands and ``keep_alive`` becomes False."""
        reference = read(answer)
        reader = ResponseReader()
        assert reader.feed(answer + extra) is True
        assert (reader.status, reader.body, reader.fields) == (
            reference.status,
            reference.body,
            reference.fields,
        )
        assert reader.keep_alive is False

    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        ],
        ids=["connection-close", "http10"],
    )
    def test_same_feed_after_closing_answer(self, answer: bytes) -> None:
        """The rule holds for answers that close the connection too."""
        reader = ResponseReader()
        assert reader.feed(answer + b"garbage") is True
        assert (reader.status, reader.body, reader.keep_alive) == (200, b"{}", False)

    def test_later_feed_raises(self) -> None:
        """Feeding more after ``feed`` said complete is a ProtocolError."""
        reader = read(OK_2)
        with pytest.raises(ProtocolError, match="after the answer"):
            reader.feed(b"x")
        assert (reader.status, reader.body) == (200, b"{}")

    def test_later_feed_after_eof_delimited_answer_raises(self) -> None:
        """Also after an answer completed by EOF."""
        reader = read(UNTIL_EOF, eof=True)
        with pytest.raises(ProtocolError):
            reader.feed(b"more")


class TestStarted:
    """``started``: whether any byte of an answer has arrived."""

    def test_not_started(self) -> None:
        """A fresh reader has not started."""
        assert ResponseReader().started is False

    def test_one_byte_starts(self) -> None:
        """The first byte starts it, even if incomplete."""
        reader = ResponseReader()
        reader.feed(b"H")
        assert reader.started is True

    @pytest.mark.parametrize("answer", list(ALL_ANSWERS.values()), ids=list(ALL_ANSWERS))
    def test_started_after_complete(self, answer: bytes) -> None:
        """A complete answer has started."""
        assert read(answer, eof=True).started is True


# -- ResponseReader: splitting ---------------------------------------------------------------------


class TestSplitting:
    """Where the bytes are cut never changes the answer."""

    @pytest.mark.parametrize("answer", list(ALL_ANSWERS.values()), ids=list(ALL_ANSWERS))
    def test_one_byte_at_a_time(self, answer: bytes) -> None:
        """Fed one byte at a time: the same answer as fed whole."""
        eof = answer is UNTIL_EOF
        whole = read(answer, eof=eof)
        bytewise = read(*(answer[i : i + 1] for i in range(len(answer))), eof=eof)
        assert outcome(bytewise) == outcome(whole)

    @pytest.mark.parametrize("answer", list(ALL_ANSWERS.values()), ids=list(ALL_ANSWERS))
    def test_every_two_piece_split(self, answer: bytes) -> None:
        """Cut at every position: the same answer as fed whole."""
        eof = answer is UNTIL_EOF
        whole = outcome(read(answer, eof=eof))
        for cut in range(1, len(answer)):
            assert outcome(read(answer[:cut], answer[cut:], eof=eof)) == whole, cut

    @pytest.mark.parametrize("answer", list(FRAMED_ANSWERS.values()), ids=list(FRAMED_ANSWERS))
    def test_framed_answers_complete_on_their_last_byte(self, answer: bytes) -> None:
        """A framed answer is complete exactly when its last byte arrives, never earlier."""
        reader = ResponseReader()
        for i in range(len(answer) - 1):
            assert reader.feed(answer[i : i + 1]) is False, i
        assert reader.feed(answer[-1:]) is True

    @FAST
    @given(
        body=st.binary(max_size=3000),
        cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
        status=st.sampled_from([200, 202, 400, 401, 403, 404, 413, 500, 503]),
    )
    def test_random_splits_of_content_length_answers(
        self, body: bytes, cuts: list[int], status: int
    ) -> None:
        """Random bodies, random cuts: same status, headers and body."""
        answer = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-A: b\r\n\r\n%s" % (
            status,
            len(body),
            body,
        )
        cuts = [c for c in cuts if c < len(answer)]
        reader = feed_split(answer, cuts, eof=False)
        assert outcome(reader) == outcome(read(answer))
        assert (reader.status, reader.body) == (status, body)

    @FAST
    @given(
        body=st.binary(max_size=3000),
        sizes=st.lists(st.integers(min_value=1, max_value=700), max_size=10),
        extensions=st.booleans(),
        cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
    )
    def test_random_chunkings(
        self, body: bytes, sizes: list[int], extensions: bool, cuts: list[int]
    ) -> None:
        """Any chunking of any body, cut anywhere, decodes to the original bytes."""
        answer = chunked_answer(body, sizes, extensions)
        cuts = [c for c in cuts if c < len(answer)]
        reader = feed_split(answer, cuts, eof=False)
        assert reader.body == body
        assert (reader.status, reader.keep_alive) == (200, True)

    @FAST
    @given(
        body=st.binary(max_size=2000),
        cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    )
    def test_random_splits_of_eof_delimited_answers(self, body: bytes, cuts: list[int]) -> None:
        """A body running to EOF, cut anywhere, is the bytes that arrived."""
        answer = b"HTTP/1.1 200 OK\r\n\r\n" + body
        cuts = [c for c in cuts if c < len(answer)]
        reader = feed_split(answer, cuts, eof=True)
        assert (reader.status, reader.body, reader.keep_alive) == (200, body, False)


# -- ResponseReader: limits ------------------------------------------------------------------------


class TestHeadLimit:
    """A head over MAX_HEAD_BYTES is refused before it can grow without bound."""

    def test_endless_header_line(self) -> None:
        """One header line that never ends, fed in pieces: refused soon after the limit."""
        reader = ResponseReader()
        piece = b"a" * 1024
        reader.feed(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        fed = 0
        with pytest.raises(ProtocolError) as info:
            for _ in range(10 * MAX_HEAD_BYTES // len(piece)):
                reader.feed(piece)
                fed += len(piece)
        assert str(MAX_HEAD_BYTES) in str(info.value)
        assert fed <= MAX_HEAD_BYTES + 2 * len(piece)

    def test_endless_header_fields(self) -> None:
        """Many short fields (under MAX_HEADERS) adding up past the limit: refused."""
        big = b"X-Big: " + b"v" * 1000 + b"\r\n"
        with pytest.raises(ProtocolError, match=str(MAX_HEAD_BYTES)):
            reader = ResponseReader()
            reader.feed(b"HTTP/1.1 200 OK\r\n")
            for _ in range(MAX_HEADERS):
                reader.feed(big)

    def test_endless_interim_answers(self) -> None:
        """A server sending 100 Continue forever is refused by the same limit."""
        reader = ResponseReader()
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        with pytest.raises(ProtocolError, match=str(MAX_HEAD_BYTES)):
            for _ in range(2 * MAX_HEAD_BYTES // len(interim) + 2):
                reader.feed(interim)

    def test_head_at_the_limit_accepted(self) -> None:
        """A head of exactly MAX_HEAD_BYTES, fed in pieces, is accepted."""
        start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
        head = start + b"p" * (MAX_HEAD_BYTES - len(start) - 4) + b"\r\n\r\n"
        assert len(head) == MAX_HEAD_BYTES
        pieces = [head[i : i + 4096] for i in range(0, len(head), 4096)]
        reader = read(*pieces, b"{}")
        assert (reader.status, reader.body, len(reader.headers["x-pad"])) == (
            200,
            b"{}",
            MAX_HEAD_BYTES - len(start) - 4,
        )

    @pytest.mark.parametrize("split", [False, True], ids=["whole", "limit+1"])
    def test_head_over_the_limit_refused_however_it_arrives(self, split: bool) -> None:
        """Over the limit is refused whether it comes in one piece or crosses it in the last."""
        start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
        size = MAX_HEAD_BYTES + 1 if split else 100_000
        head = start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"
        assert len(head) == size
        pieces = [head[:MAX_HEAD_BYTES], head[MAX_HEAD_BYTES:]] if split else [head]
        refused(*pieces)


class TestHeaderCountLimit:
    """More than MAX_HEADERS header fields is refused."""

    @staticmethod
    def answer(fields: int) -> bytes:
        extra = b"".join(b"X-%d: v\r\n" % i for i in range(fields - 1))
        return b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: 0\r\n\r\n"

    def test_at_the_limit(self) -> None:
        """Exactly MAX_HEADERS fields are accepted."""
        reader = read(self.answer(MAX_HEADERS))
        assert len(reader.headers) == MAX_HEADERS

    def test_over_the_limit(self) -> None:
        """MAX_HEADERS + 1 fields: ProtocolError naming the limit."""
        assert str(MAX_HEADERS) in str(refused(self.answer(MAX_HEADERS + 1)))

    def test_repeated_name_counts_each_field(self) -> None:
        """The same name repeated counts once per field."""
        fields = b"Set-Cookie: a=b\r\n" * (MAX_HEADERS + 1)
        refused(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n")

    def test_limit_read_at_call_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The module constant is read when the answer is read."""
        monkeypatch.setattr(http11, "MAX_HEADERS", 3)
        read(self.answer(3))
        assert "more than 3" in str(refused(self.answer(4)))


class TestBodyLimit:
    """A body over MAX_BODY_BYTES is refused, however it is framed."""

    LIMIT = 1000

    @pytest.fixture(autouse=True)
    def small_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(http11, "MAX_BODY_BYTES", self.LIMIT)

    def test_content_length_at_the_limit(self) -> None:
        """A body of exactly the limit is accepted."""
        body = b"b" * self.LIMIT
        assert read(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body).body == body

    def test_content_length_over_the_limit(self) -> None:
        """One byte over: ProtocolError naming the (patched) limit."""
        error = refused(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n" + b"b" * 1001)
        assert str(self.LIMIT) in str(error)

    def test_chunked_over_the_limit(self) -> None:
        """Chunks adding up past the limit, fed one by one."""
        chunks = [b"64\r\n" + b"c" * 100 + b"\r\n"] * 20
        refused(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", *chunks)

    def test_eof_delimited_over_the_limit(self) -> None:
        """A body running to EOF is refused before the EOF arrives."""
        reader = ResponseReader()
        reader.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        with pytest.raises(ProtocolError, match=str(self.LIMIT)):
            for _ in range(100):
                reader.feed(b"e" * 100)
        assert len(reader.body) <= self.LIMIT

    def test_announced_length_alone_is_not_refused(self) -> None:
        """Only bytes that arrive count: a big Content-Length is refused by its body."""
        reader = ResponseReader()
        assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 999) is False
        with pytest.raises(ProtocolError):
            reader.feed(b"xx")


# -- ResponseReader: malformed answers -------------------------------------------------------------


MALFORMED = {
    "garbage-status-line": b"garbage\r\n\r\n",
    "not-http": b"ICY 200 OK\r\n\r\n",
    "bad-version": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "two-digit-status": b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    "four-digit-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "letters-in-status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "bare-lf-lenient-but-conflicting-lengths": (
        b"HTTP/1.1 200 OK\nContent-Length: 2\nContent-Length: 3\n\n{}x"
    ),
    "bare-lf-lenient-but-length-and-chunked": (
        b"HTTP/1.1 200 OK\nContent-Length: 2\nTransfer-Encoding: chunked\n\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "bare-lf-chunk-size-line": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n"
    ),
    "bare-cr": b"HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\n{}",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "ctl-in-value": b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 2\r\n\r\n{}",
    "del-in-value": b"HTTP/1.1 200 OK\r\nX: a\x7fb\r\nContent-Length: 2\r\n\r\n{}",
    "space-in-name": b"HTTP/1.1 200 OK\r\nX Y: a\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "no-colon": b"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n",
    "conflicting-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"
    ),
    "content-length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}x",
    "content-length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    ),
    "chunked-and-content-length": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    ),
    "negative-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    "non-numeric-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}",
    "hex-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}",
    "empty-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n{}",
    "overflowing-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}"
    ),
    "invalid-chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "negative-chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n"
    ),
    "overflowing-chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"
    ),
    "chunk-longer-than-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"
    ),
}


class TestBareLF:
    """A status or header line ending in a bare LF is accepted (RFC 9112, 2.2), as
    http.client and urllib3 do and HTTP mocking libraries (httpretty) produce."""

    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\n{}",
            b"HTTP/1.1 200 OK\nContent-Type: application/json\r\nContent-Length: 2\n\n{}",
        ],
        ids=["everywhere", "after-header", "mixed"],
    )
    def test_accepted(self, answer: bytes) -> None:
        for pieces in ([answer], [answer[i : i + 1] for i in range(len(answer))]):
            reader = ResponseReader()
            done = False
            for piece in pieces:
                done = reader.feed(piece)
            assert done and reader.status == 200 and reader.body == b"{}"
            assert reader.headers["content-length"] == "2" and reader.keep_alive

    def test_bare_lf_then_junk_after_answer_drops_connection(self) -> None:
        """Bytes after a complete answer are still refused (the connection is not kept)."""
        reader = ResponseReader()
        assert reader.feed(b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}junk") is True
        assert reader.body == b"{}" and reader.keep_alive is False

    def test_bare_lf_head_limit_still_applies(self) -> None:
        head = b"HTTP/1.1 200 OK\n" + b"X-Pad: " + b"a" * 70_000 + b"\n"
        refused(head, b"Content-Length: 0\n\n")


class TestMalformed:
    """Anything that breaks HTTP/1.1 is a ProtocolError, never another exception or a wait."""

    @pytest.mark.parametrize("answer", list(MALFORMED.values()), ids=list(MALFORMED))
    def test_refused(self, answer: bytes) -> None:
        """Fed whole, or one byte at a time (then EOF): ProtocolError either way."""
        refused(answer, eof=True)
        refused(*(answer[i : i + 1] for i in range(len(answer))), eof=True)

    def test_error_names_the_problem(self) -> None:
        """The parser's reason is in the message."""
        assert "Content-Length" in str(refused(MALFORMED["conflicting-content-length"]))

    @pytest.mark.parametrize("code", [b"000", b"001", b"099"])
    def test_status_below_100_refused(self, code: bytes) -> None:
        """A status line's code is 100..999; anything else is a ProtocolError."""
        refused(b"HTTP/1.1 " + code + b" X\r\nContent-Length: 0\r\n\r\n", eof=True)


def check_only_protocol_error(pieces: list[bytes]) -> None:
    """Feeding ``pieces`` then EOF either succeeds or raises ProtocolError, nothing else."""
    reader = ResponseReader()
    try:
        for piece in pieces:
            if piece:
                reader.feed(piece)
        done = reader.feed(b"")
    except ProtocolError:
        return
    assert done and reader.complete
    data = b"".join(pieces)
    if reader.status < 100:  # the leading-zero bug: see test_status_below_100_refused
        assert re.search(rb"HTTP/1\.[01] 0\d\d", data), data
    else:
        assert 100 <= reader.status <= 999
    assert isinstance(reader.body, bytes)


VALID_ANSWERS = list(ALL_ANSWERS.values())


class TestFuzz:
    """Random input: ProtocolError or an answer whose status is 100..999."""

    @FAST
    @given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
    def test_random_bytes(self, data: bytes, cuts: list[int]) -> None:
        """Arbitrary bytes, cut anywhere."""
        bounds = [0, *sorted({c for c in cuts if c < len(data)}), len(data)]
        check_only_protocol_error([data[a:b] for a, b in zip(bounds, bounds[1:])])

    @FAST
    @given(
        data=st.binary(max_size=300).map(lambda tail: b"HTTP/1.1 200 OK\r\n" + tail),
        cuts=st.lists(st.integers(0, 400), max_size=6),
    )
    def test_random_bytes_after_a_valid_status_line(self, data: bytes, cuts: list[int]) -> None:
        """A valid status line then arbitrary bytes, cut anywhere."""
        bounds = [0, *sorted({c for c in cuts if c < len(data)}), len(data)]
        check_only_protocol_error([data[a:b] for a, b in zip(bounds, bounds[1:])])

    @settings(max_examples=120, deadline=None)
    @given(
        answer=st.sampled_from(VALID_ANSWERS),
        edits=st.lists(
            st.tuples(
                st.sampled_from(["replace", "insert", "delete"]),
                st.integers(0, 10_000),
                st.binary(min_size=1, max_size=3),
            ),
            min_size=1,
            max_size=4,
        ),
        cut=st.integers(0, 400),
    )
    @example(answer=OK_2, edits=[("replace", 9, b"0")], cut=0)
    @example(answer=CHUNKED, edits=[("delete", 60, b"x")], cut=70)
    def test_mutated_answers(
        self, answer: bytes, edits: list[tuple[str, int, bytes]], cut: int
    ) -> None:
        """A valid answer with bytes replaced, inserted or deleted, cut anywhere."""
        data = bytearray(answer)
        for kind, position, value in edits:
            index = position % (len(data) + 1)
            if kind == "replace":
                data[index : index + len(value)] = value
            elif kind == "insert":
                data[index:index] = value
            else:
                del data[index : index + len(value)]
        raw = bytes(data)
        cut = min(cut, len(raw))
        check_only_protocol_error([raw[:cut], raw[cut:]])


# -- ResponseHeaders -------------------------------------------------------------------------------


class TestResponseHeaders:
    """A case-insensitive mapping of lower-case names to latin-1 decoded values."""

    FIELDS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"Content-Type", b"application/json"),
        (b"Retry-After", b"120"),
        (b"set-cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"SET-COOKIE", b"c=3"),
        (b"X-Name", b"caf\xe9 \xff"),
    ]

    def test_case_insensitive_get(self) -> None:
        """Any case of a name finds the field."""
        headers = ResponseHeaders(self.FIELDS)
        assert headers["retry-after"] == headers["RETRY-AFTER"] == headers["Retry-After"] == "120"
        assert headers.get("content-TYPE") == "application/json"
        assert headers.get("missing") is None
        assert headers.get("missing", "x") == "x"

    def test_missing_raises_key_error(self) -> None:
        """A missing name is a KeyError."""
        with pytest.raises(KeyError):
            ResponseHeaders(self.FIELDS)["Location"]

    def test_case_insensitive_contains(self) -> None:
        """``in`` ignores case; non-strings are never in it."""
        headers = ResponseHeaders(self.FIELDS)
        assert "RETRY-after" in headers
        assert "retry" not in headers
        assert b"retry-after" not in headers
        assert 1 not in headers

    def test_repeated_fields_joined(self) -> None:
        """A repeated field reads as its values joined with ", ", in arrival order."""
        assert ResponseHeaders(self.FIELDS)["Set-Cookie"] == "a=1, b=2, c=3"

    def test_iteration_and_len(self) -> None:
        """Iteration yields each distinct lower-case name once, in first-seen order."""
        headers = ResponseHeaders(self.FIELDS)
        assert list(headers) == ["content-type", "retry-after", "set-cookie", "x-name"]
        assert len(headers) == 4
        assert dict(headers)["set-cookie"] == "a=1, b=2, c=3"

    def test_latin1_values(self) -> None:
        """Bytes are decoded as latin-1, so any byte reads as one character."""
        assert ResponseHeaders(self.FIELDS)["x-name"] == "caf\xe9 \xff"

    def test_empty(self) -> None:
        """No fields: an empty mapping."""
        headers = ResponseHeaders([])
        assert (len(headers), list(headers), "a" in headers) == (0, [], False)

    def test_repr_shows_the_mapping(self) -> None:
        """The repr shows names and values."""
        assert "'retry-after': '120'" in repr(ResponseHeaders(self.FIELDS))

    def test_from_the_reader(self) -> None:
        """The reader's headers: raw fields kept, joined view, obs-text decoded as latin-1."""
        reader = read(
            b"HTTP/1.1 200 OK\r\nVary: a\r\nVARY: b\r\nX-T: caf\xe9\r\nX-Tab: a\tb\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        assert reader.fields[:2] == [(b"Vary", b"a"), (b"VARY", b"b")]
        assert reader.headers["vary"] == "a, b"
        assert reader.headers["x-t"] == "caf\xe9"
        assert reader.headers["x-tab"] == "a\tb"


# -- requests --------------------------------------------------------------------------------------


def make_client() -> pusher_fast.Pusher:
    return pusher_fast.Pusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=8000, ssl=False
    )


@pytest.fixture
def client() -> pusher_fast.Pusher:
    return make_client()


@pytest.fixture
def encoder() -> RequestEncoder:
    return RequestEncoder(host_header("127.0.0.1", 8000, 80))


class CustomRequest(Request):
    """A Request subclass with headers of its own (as a backend written elsewhere may send)."""

    __slots__ = ("extra",)

    def __init__(self, client: Any, extra: dict[str, str], **fields: Any) -> None:
        defaults: dict[str, Any] = {
            "method": "POST",
            "path": "/apps/1/events",
            "params": None,
            "body": b"{}",
            "query_string": "a=b",
        }
        defaults.update(fields)
        super().__init__(client, **defaults)
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        return {**super().headers, **self.extra}


class ParsedRequest:
    """What httptools' request parser makes of some bytes."""

    def __init__(self, data: bytes) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(data)
        self.method = parser.get_method()
        self.keep_alive = parser.should_keep_alive()
        url = httptools.parse_url(self.url)
        self.path, self.query = url.path, url.query or b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    @property
    def headers(self) -> dict[str, str]:
        return {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in self.fields}


class TestRequestBytes:
    """The encoder writes one request: request line, our headers, the caller's, the body."""

    def test_trigger_exact_bytes(self, client: pusher_fast.Pusher, encoder: RequestEncoder) -> None:
        """A trigger's bytes, exactly."""
        request = client._trigger_request("ch", "ev", {"a": 1})
        assert type(request) is Request
        assert request.body == b'{"name":"ev","channels":["ch"],"data":"{\\"a\\":1}"}'
        expected = (
            b"POST /apps/1/events?" + request.query_string.encode() + b" HTTP/1.1\r\n"
            b"Host: 127.0.0.1:8000\r\n"
            b"Accept-Encoding: identity\r\n"
            b"User-Agent: pusher-fast-python/" + VERSION.encode() + b"\r\n"
            b"X-Pusher-Library: pusher-fast-python " + VERSION.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 50\r\n"
            b"\r\n" + request.body
        )
        assert encoder.encode(request) == expected
        assert USER_AGENT == "pusher-fast-python/" + VERSION

    def test_get_exact_bytes(self, client: pusher_fast.Pusher, encoder: RequestEncoder) -> None:
        """A GET: no Content-Type, Content-Length 0, no body."""
        request = client._channels_info_request()
        data = encoder.encode(request)
        assert data.startswith(b"GET /apps/1/channels?" + request.query_string.encode() + b" HTTP")
        assert b"Content-Type" not in data
        assert data.endswith(b"\r\nContent-Length: 0\r\n\r\n")

    @pytest.mark.parametrize("data", ["x", "é" * 50, {"k": "v" * 5000}, [1, 2, 3]])
    def test_content_length_is_the_body_length(
        self, client: pusher_fast.Pusher, encoder: RequestEncoder, data: Any
    ) -> None:
        """Content-Length is the body's length in bytes, and the body follows the head."""
        request = client._trigger_request("ch", "ev", data)
        head, _, body = encoder.encode(request).partition(b"\r\n\r\n")
        assert body == request.body
        assert head.endswith(b"\r\nContent-Length: %d" % len(request.body))
        assert head.count(b"Content-Length") == 1

    def test_str_body_of_a_subclass(self, client: pusher_fast.Pusher) -> None:
        """A subclass may carry a str body: sent as UTF-8, counted in bytes."""
        request = CustomRequest(client, {}, body="é€")
        data = RequestEncoder("h").encode(request)
        assert data.endswith(b"Content-Length: 5\r\n\r\n" + "é€".encode())

    def test_our_headers_win(self, client: pusher_fast.Pusher) -> None:
        """Host, Content-Length and Transfer-Encoding of the request are replaced by ours."""
        extra = {"Host": "evil", "content-length": "999", "Transfer-Encoding": "chunked"}
        data = RequestEncoder("good").encode(CustomRequest(client, extra))
        assert b"evil" not in data and b"999" not in data and b"chunked" not in data
        assert data.count(b"Host: ") == 1
        assert b"Host: good\r\n" in data
        assert data.endswith(b"Content-Length: 2\r\n\r\n{}")


class TestHeadCache:
    """The head is built once per (method, path); only query and Content-Length change."""

    def test_one_head_per_method_and_path(
        self, client: pusher_fast.Pusher, encoder: RequestEncoder
    ) -> None:
        """Two triggers share one cached head; a GET adds another; the bytes stay right."""
        first = client._trigger_request("ch", "ev", {"a": 1})
        second = client._trigger_request("other", "ev2", "longer data")
        a = encoder.encode(first)
        cached = encoder._heads[("POST", "/apps/1/events")]
        b = encoder.encode(second)
        assert len(encoder._heads) == 1
        assert encoder._heads[("POST", "/apps/1/events")] is cached  # reused, not rebuilt
        assert a.split(b"?", 1)[0] == b.split(b"?", 1)[0] == b"POST /apps/1/events"
        assert b.endswith(b"Content-Length: %d\r\n\r\n%s" % (len(second.body), second.body))
        assert second.query_string.encode() in b
        assert (
            a.partition(b" HTTP/1.1")[2].split(b"Content-Length")[0]
            == (b.partition(b" HTTP/1.1")[2].split(b"Content-Length")[0])
        )
        encoder.encode(client._channels_info_request())
        assert len(encoder._heads) == 2

    def test_cached_equals_fresh(self, client: pusher_fast.Pusher) -> None:
        """A cached head gives the same bytes as a fresh encoder."""
        warm = RequestEncoder("h")
        warm.encode(client._trigger_request("ch", "ev", "warm up"))
        request = client._trigger_request("ch", "ev", "again")
        assert warm.encode(request) == RequestEncoder("h").encode(request)

    def test_cache_is_bounded(self, client: pusher_fast.Pusher, encoder: RequestEncoder) -> None:
        """Many paths never grow the cache past its bound."""
        for i in range(600):
            encoder.encode(Request(client, "GET", f"/apps/1/channels/c{i}", {}, b"", "q=1"))
            assert len(encoder._heads) <= http11._HEADS_MAX

    def test_subclass_heads_not_cached(self, client: pusher_fast.Pusher) -> None:
        """A subclass's headers may change per request: each request gets its own head."""
        encoder = RequestEncoder("h")
        a = encoder.encode(CustomRequest(client, {"X-Try": "1"}))
        b = encoder.encode(CustomRequest(client, {"X-Try": "2"}))
        assert b"X-Try: 1\r\n" in a
        assert b"X-Try: 2\r\n" in b
        assert encoder._heads == {}


UNSAFE = [
    "a b",
    "a\rb",
    "a\nb",
    "a\r\nX-Injected: 1",
    "a\tb",
    "a\x00b",
    "a\x7fb",
    "caf\xe9",
    "日本",
]


class TestRefusals:
    """Anything that could end or split the request line or a header is a ValueError."""

    @pytest.mark.parametrize("bad", UNSAFE)
    def test_method(self, client: pusher_fast.Pusher, encoder: RequestEncoder, bad: str) -> None:
        """In the method."""
        with pytest.raises(ValueError):
            encoder.encode(Request(client, "GET" + bad, "/p", {}, b"", "q=1"))

    @pytest.mark.parametrize("bad", UNSAFE)
    def test_path(self, client: pusher_fast.Pusher, encoder: RequestEncoder, bad: str) -> None:
        """In the path (and nothing is cached for it)."""
        with pytest.raises(ValueError):
            encoder.encode(Request(client, "GET", "/p/" + bad, {}, b"", "q=1"))
        assert encoder._heads == {}

    @pytest.mark.parametrize("bad", [*(u for u in UNSAFE if u.isascii()), "é\r\nX: 1", "é b"])
    def test_query(self, client: pusher_fast.Pusher, encoder: RequestEncoder, bad: str) -> None:
        """In the query, even when the head is already cached (non-ASCII alone is encoded)."""
        encoder.encode(Request(client, "GET", "/p", {}, b"", "q=1"))
        with pytest.raises(ValueError):
            encoder.encode(Request(client, "GET", "/p", {}, b"", "q=" + bad))

    @pytest.mark.parametrize("text", ["caf\xe9", "日本"])
    def test_non_ascii_in_the_query_is_percent_encoded(
        self, client: pusher_fast.Pusher, encoder: RequestEncoder, text: str
    ) -> None:
        """A non-ASCII key goes on the wire as UTF-8 percent-escapes, as requests sends it."""
        import urllib.parse

        wire = encoder.encode(Request(client, "GET", "/p", {}, b"", "q=" + text))
        assert wire.startswith(f"GET /p?q={urllib.parse.quote(text)} HTTP/1.1\r\n".encode())

    @pytest.mark.parametrize("bad", [*UNSAFE, "a:b"])
    def test_header_name(self, client: pusher_fast.Pusher, bad: str) -> None:
        """In a header name (a colon too)."""
        with pytest.raises(ValueError):
            RequestEncoder("h").encode(CustomRequest(client, {bad: "v"}))

    @pytest.mark.parametrize(
        "bad", ["a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00b", "a\x7fb", "日本"]
    )
    def test_header_value(self, client: pusher_fast.Pusher, bad: str) -> None:
        """In a header value: control characters and what latin-1 cannot hold."""
        with pytest.raises(ValueError):
            RequestEncoder("h").encode(CustomRequest(client, {"X-A": bad}))

    def test_header_value_may_hold_spaces(self, client: pusher_fast.Pusher) -> None:
        """Spaces (and empty values) are fine in a header value."""
        data = RequestEncoder("h").encode(CustomRequest(client, {"X-A": "a b c", "X-B": ""}))
        assert b"X-A: a b c\r\nX-B: \r\n" in data

    def test_header_value_non_ascii(self, client: pusher_fast.Pusher) -> None:
        """Non-ASCII in a header value is refused like everywhere else."""
        with pytest.raises(ValueError):
            RequestEncoder("h").encode(CustomRequest(client, {"X-A": "caf\xe9"}))

    def test_empty_header_name(self, client: pusher_fast.Pusher) -> None:
        """A header name is at least one character."""
        with pytest.raises(ValueError):
            RequestEncoder("h").encode(CustomRequest(client, {"": "v"}))

    @pytest.mark.parametrize("bad", ["bad host", "h\r\nX: 1", "bücher.de", "h\t"])
    def test_host(self, bad: str) -> None:
        """The Host value given to the encoder."""
        with pytest.raises(ValueError):
            RequestEncoder(bad)


class TestIsSafeTarget:
    """``is_safe_target``: printable ASCII without spaces."""

    @pytest.mark.parametrize("text", ["", "/apps/1/events", "a=b&c=d%20e", "~!@#$%^&*()_+{}|:<>?"])
    def test_safe(self, text: str) -> None:
        assert is_safe_target(text)

    @pytest.mark.parametrize("text", UNSAFE)
    def test_unsafe(self, text: str) -> None:
        assert not is_safe_target(text)

    @FAST
    @given(st.text(max_size=30))
    def test_rule(self, text: str) -> None:
        """Safe exactly when every character is in ! .. ~."""
        assert is_safe_target(text) == all("!" <= ch <= "~" for ch in text)


class TestHostHeader:
    """``host_header``: brackets for IPv6, punycode for IDNs, the port unless default."""

    @pytest.mark.parametrize(
        ("host", "port", "default", "expected"),
        [
            ("api-eu.pusher.com", 443, 443, "api-eu.pusher.com"),
            ("api-eu.pusher.com", 8443, 443, "api-eu.pusher.com:8443"),
            ("127.0.0.1", 80, 80, "127.0.0.1"),
            ("127.0.0.1", 8000, 80, "127.0.0.1:8000"),
            ("example.com", 80, 443, "example.com:80"),
            ("::1", 80, 80, "[::1]"),
            ("::1", 8080, 80, "[::1]:8080"),
            ("2001:db8::1", 443, 443, "[2001:db8::1]"),
            ("[::1]", 81, 80, "[::1]:81"),
            ("bücher.de", 443, 443, "xn--bcher-kva.de"),
            ("bücher.de", 8000, 443, "xn--bcher-kva.de:8000"),
            ("münchen.example", 80, 80, "xn--mnchen-3ya.example"),
        ],
    )
    def test_values(self, host: str, port: int, default: int, expected: str) -> None:
        assert host_header(host, port, default) == expected

    def test_result_is_accepted_by_the_encoder(self) -> None:
        """What host_header gives is always safe for the encoder."""
        for host in ("::1", "bücher.de", "example.com"):
            data = RequestEncoder(host_header(host, 1234, 80)).encode(
                Request(None, "GET", "/", {}, b"", "")  # type: ignore[arg-type]
            )
            assert ParsedRequest(data).headers["host"] == host_header(host, 1234, 80)


SAFE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))


class TestRoundTrip:
    """httptools' request parser reads back what the encoder wrote."""

    def test_trigger(self, client: pusher_fast.Pusher, encoder: RequestEncoder) -> None:
        """Method, path, query, headers and body of a trigger."""
        request = client._trigger_request("ch", "ev", {"a": 1})
        parsed = ParsedRequest(encoder.encode(request))
        assert parsed.complete and parsed.keep_alive
        assert parsed.method == b"POST"
        assert parsed.path == b"/apps/1/events"
        assert parsed.query == request.query_string.encode()
        assert parsed.body == request.body
        assert parsed.headers == {
            "host": "127.0.0.1:8000",
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
            "x-pusher-library": "pusher-fast-python " + VERSION,
            "content-type": "application/json",
            "content-length": str(len(request.body)),
        }

    def test_get(self, client: pusher_fast.Pusher, encoder: RequestEncoder) -> None:
        """A GET with its own query parameters."""
        request = client._channels_info_request("presence-", ["user_count"])
        parsed = ParsedRequest(encoder.encode(request))
        assert (parsed.method, parsed.path, parsed.body) == (b"GET", b"/apps/1/channels", b"")
        assert b"filter_by_prefix=presence-" in parsed.query
        assert parsed.query == request.query_string.encode()

    def test_two_requests_back_to_back(
        self, client: pusher_fast.Pusher, encoder: RequestEncoder
    ) -> None:
        """Two encoded requests on one connection are two complete messages."""
        first = client._trigger_request("a", "e", "1")
        second = client._channels_info_request()
        bodies: list[bytes] = []

        class Collect:
            def on_body(self, body: bytes) -> None:
                bodies.append(body)

            def on_message_complete(self) -> None:
                bodies.append(b"|")

        httptools.HttpRequestParser(Collect()).feed_data(
            encoder.encode(first) + encoder.encode(second)
        )
        assert b"".join(bodies) == first.body + b"||"

    @FAST
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
        path=st.text(SAFE_CHARS.replace("?", "").replace("#", ""), max_size=40),
        query=st.text(SAFE_CHARS.replace("#", ""), max_size=60),
        body=st.binary(max_size=2000),
        extra=st.dictionaries(
            st.text("abcxyz-_0123456789", min_size=1, max_size=12).map(lambda s: "x-" + s),
            st.text(SAFE_CHARS + " ", max_size=30).map(str.strip),
            max_size=4,
        ),
    )
    def test_random_requests(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        extra: dict[str, str],
    ) -> None:
        """Any safe method, path, query, headers and body survive the round trip."""
        request = CustomRequest(
            make_client(), extra, method=method, path="/" + path, query_string=query, body=body
        )
        parsed = ParsedRequest(RequestEncoder("h").encode(request))
        assert parsed.complete
        assert parsed.method == method.encode()
        assert parsed.path == b"/" + path.encode()
        assert parsed.query == query.encode()
        assert parsed.body == body
        assert parsed.headers["content-length"] == str(len(body))
        for name, value in extra.items():
            assert parsed.headers[name.lower()] == value
