"""The streaming multipart reader: same result however the body is split into chunks,
busboy's rules for parts (file vs field, names, types), and every limit."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arinova.errors import ApiError
from arinova.http.multipart import Form, MultipartParser, _Collector, boundary_of
from tests.http.uploads_fixtures import PNG, Part, file_part, multipart

BOUNDARY = b"----arinovaTestBoundary7MA4YWxkTrZu0gW"


def parse(
    body: bytes,
    chunks: list[int] | None = None,
    *,
    max_file_size: int = 1 << 20,
    keep_bytes: int | None = None,
    wanted: frozenset[str] = frozenset({"caption"}),
    seen: list[tuple[str, str]] | None = None,
) -> Form:
    def check(name: str, kind: str) -> None:
        if seen is not None:
            seen.append((name, kind))

    collector = _Collector(
        max_file_size=max_file_size,
        keep_bytes=max_file_size if keep_bytes is None else keep_bytes,
        wanted_fields=wanted,
        check_file=check,
    )
    parser = MultipartParser(BOUNDARY, collector)
    if chunks is None:
        parser.feed(body)
    else:
        pos = 0
        for size in chunks:
            parser.feed(body[pos : pos + size])
            pos += size
        parser.feed(body[pos:])
    parser.finish()
    return collector.form


SAMPLE = multipart(
    Part("note", "ignored"),
    file_part(PNG + b"\r\n--not-the-boundary\r\n" + b"\r" * 50, "a.png", "image/png"),
    Part("caption", "caption text é"),
    file_part(b"second", "b.txt", "text/plain"),
)[1]


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=97), max_size=40))
def test_any_chunking_gives_the_same_form(chunks: list[int]) -> None:
    assert parse(SAMPLE, chunks) == parse(SAMPLE)


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=0, max_value=97), max_size=40),
    st.integers(min_value=0, max_value=200),
)
def test_a_spooling_collector_hands_over_the_same_file_bytes(
    chunks: list[int], keep_bytes: int
) -> None:
    """What ``spooled_form`` writes to the spool file: the pending bytes taken after each
    chunk, together, are the first ``keep_bytes`` of the first file, however it is cut."""
    collector = _Collector(
        max_file_size=1 << 20,
        keep_bytes=keep_bytes,
        wanted_fields=frozenset({"caption"}),
        check_file=None,
        spool=True,
    )
    parser = MultipartParser(BOUNDARY, collector)
    spooled = bytearray()
    pos = 0
    for size in [*chunks, len(SAMPLE)]:
        parser.feed(SAMPLE[pos : pos + size])
        spooled += collector.take_pending()
        pos += size
    parser.finish()
    expected = parse(SAMPLE)
    assert expected.file is not None and collector.form.file is not None
    assert bytes(spooled) == expected.file.data[:keep_bytes]
    assert collector.form.file.size == expected.file.size
    assert collector.form.fields == expected.fields


def test_the_sample_form() -> None:
    seen: list[tuple[str, str]] = []
    form = parse(SAMPLE, seen=seen)
    assert form.fields == {"caption": "caption text é"}
    assert form.file is not None
    assert form.file.file_name == "a.png"
    assert form.file.content_type == "image/png"
    assert form.file.data == PNG + b"\r\n--not-the-boundary\r\n" + b"\r" * 50
    assert form.file.size == len(form.file.data)
    assert seen == [("a.png", "image/png")]  # checked once, for the first file only


def test_byte_by_byte() -> None:
    assert parse(SAMPLE, [1] * len(SAMPLE)) == parse(SAMPLE)


@pytest.mark.parametrize(
    ("disposition", "content_type", "is_file", "file_name"),
    [
        ('form-data; name="f"; filename="a.txt"', None, True, "a.txt"),
        ('form-data; name="f"; filename=""', None, True, ""),
        ('form-data; name="f"', "application/octet-stream", True, ""),
        ('form-data; name="f"', "text/plain", False, None),
        ('form-data; name="f"; filename="../../etc/passwd"', None, True, "passwd"),
        ('form-data; name="f"; filename="C:\\\\x\\\\y.png"', None, True, "y.png"),
        ('form-data; name="f"; filename=".."', None, True, ""),
        ("form-data; name=f; filename=plain.txt", None, True, "plain.txt"),
        ('form-data; name="f"; filename="a;b.txt"', None, True, "a;b.txt"),
        (
            'form-data; name="f"; filename="fallback.txt"; filename*=UTF-8\'\'%E2%82%AC.txt',
            None,
            True,
            "€.txt",
        ),
    ],
)
def test_file_parts_as_busboy_sees_them(
    disposition: str, content_type: str | None, is_file: bool, file_name: str | None
) -> None:
    extra = [f"Content-Type: {content_type}"] if content_type else []
    head = f"Content-Disposition: {disposition}\r\n" + "".join(h + "\r\n" for h in extra)
    body = b"--" + BOUNDARY + b"\r\n" + head.encode() + b"\r\n" + b"data\r\n--" + BOUNDARY + b"--"
    form = parse(body)
    assert (form.file is not None) == is_file
    if form.file is not None:
        assert form.file.file_name == file_name
        assert form.file.data == b"data"


def test_utf8_file_names_and_missing_type() -> None:
    body = (
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="f"; filename="\xe5\x9c\x96.png"'
        b"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"
    )
    form = parse(body)
    assert form.file is not None
    assert form.file.file_name == "圖.png"
    assert form.file.content_type == "text/plain"


def test_parts_without_form_data_disposition_are_skipped() -> None:
    body = (
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n"
        b"--" + BOUNDARY + b'\r\nContent-Disposition: attachment; name="caption"\r\n\r\nx\r\n'
        b"--" + BOUNDARY + b"--"
    )
    assert parse(body) == Form()


def test_keep_bytes_keeps_a_prefix_and_counts_the_rest() -> None:
    body = multipart(file_part(b"x" * 1000))[1]
    form = parse(body, keep_bytes=10)
    assert form.file is not None
    assert (form.file.data, form.file.size) == (b"x" * 10, 1000)


def test_fields_are_cut_at_one_mebibyte() -> None:
    body = multipart(Part("caption", "y" * (1024 * 1024 + 10)))[1]
    assert len(parse(body).fields["caption"]) == 1024 * 1024


def test_field_names_are_cut_at_100_bytes() -> None:
    body = multipart(Part("c" * 150, "v"))[1]
    assert parse(body, wanted=frozenset({"c" * 100})).fields == {"c" * 100: "v"}


def test_padding_after_a_boundary_and_an_epilogue_are_allowed() -> None:
    body = (
        b"preamble\r\n--" + BOUNDARY + b"  \t\r\n"
        b'Content-Disposition: form-data; name="caption"\r\n\r\nok\r\n'
        b"--" + BOUNDARY + b"--\r\nepilogue --" + BOUNDARY + b"\r\n"
    )
    assert parse(body).fields == {"caption": "ok"}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"", 400, "Unexpected end of form"),
        (b"--" + BOUNDARY, 400, "Unexpected end of form"),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data", 400, "Unexpected end of form"),
        (b"--" + BOUNDARY + b"xx\r\n", 400, "Malformed part header"),
        (b"--" + BOUNDARY + b"\r\n" + b"X" * (81 * 1024), 400, "Malformed part header"),
        (
            b"--" + BOUNDARY + b"\r\nbad header\r\n\r\nx\r\n--" + BOUNDARY + b"--",
            400,
            "Malformed part header",
        ),
    ],
)
def test_malformed_bodies(body: bytes, status: int, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert (caught.value.status, caught.value.body) == (
        status,
        {"error": error, "code": "INTERNAL_ERROR"},
    )


def test_every_file_part_is_held_to_the_limit() -> None:
    body = multipart(file_part(b"small"), file_part(b"z" * 101, "b.txt", "text/plain"))[1]
    with pytest.raises(ApiError) as caught:
        parse(body, max_file_size=100)
    assert caught.value.status == 413
    assert caught.value.body == {"error": "request file too large", "code": "INTERNAL_ERROR"}
    # fields are not files: a long caption is no file-size matter
    assert parse(multipart(Part("caption", "c" * 500))[1], max_file_size=100).fields


def test_boundary_parameter() -> None:
    assert boundary_of(b"multipart/form-data; boundary=abc") == b"abc"
    assert boundary_of(b'multipart/form-data; charset=x; BOUNDARY="a b;c"') == b"a b;c"
    for bad in (
        b"multipart/form-data",
        b"multipart/form-data; boundary=",
        b"multipart/form-data; boundary=" + b"x" * 300,
    ):
        with pytest.raises(ApiError) as caught:
            boundary_of(bad)
        assert caught.value.body == {
            "error": "Multipart: Boundary not found",
            "code": "INTERNAL_ERROR",
        }


def test_the_part_header_block_is_bounded_across_its_lines() -> None:
    lines = [f"X-Filler-{i}: {'v' * 1000}" for i in range(90)]
    body = multipart(Part("caption", "x", extra_headers=lines))[1]
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert caught.value.body == {"error": "Malformed part header", "code": "INTERNAL_ERROR"}
    assert parse(multipart(Part("caption", "x", extra_headers=lines[:70]))[1]).fields


def test_a_delimiter_followed_by_other_bytes_inside_a_part_is_data() -> None:
    """RFC 2046 (python-multipart): only CRLF--boundary followed by padding and CRLF, or
    by ``--``, ends a part."""
    data = b"before\r\n--" + BOUNDARY + b"xx\r\nafter"
    form = parse(multipart(file_part(data))[1])
    assert form.file is not None
    assert form.file.data == data


def test_memory_stays_bounded_while_a_large_file_streams() -> None:
    size = 16 * 1024 * 1024
    chunk = bytes(range(256)) * 256
    head, tail = multipart(file_part(b"\x00"), Part("caption", "kept"))[1].split(b"\x00")
    collector = _Collector(
        max_file_size=size, keep_bytes=1024, wanted_fields=frozenset({"caption"}), check_file=None
    )
    parser = MultipartParser(BOUNDARY, collector)
    tracemalloc.start()
    try:
        parser.feed(head)
        for _ in range(size // len(chunk)):
            parser.feed(chunk)
        parser.feed(tail)
        parser.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert collector.form.file is not None
    assert (collector.form.file.size, len(collector.form.file.data)) == (size, 1024)
    assert collector.form.fields == {"caption": "kept"}
    assert peak < 8 * len(chunk)
