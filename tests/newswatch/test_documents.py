"""Reading article files: formats, url, encodings, and a clear error naming the file for bad input."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import pytest

from newswatch.documents import InputError, iter_paths, read_path, read_stdin

STORY = "Pyongyang's soldiers have left the Kursk front line, Ukrainian officers said on Monday.\n"


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.txt", STORY, "text"),
        ("a.text", STORY, "text"),
        ("a.md", "# Title\n\n" + STORY, "markdown"),
        ("a.markdown", "# Title\n\n" + STORY, "markdown"),
        ("a.html", f"<p>{STORY}</p>", "html"),
        ("a.HTM", f"<p>{STORY}</p>", "html"),
        ("a.xhtml", f"<html><body><p>{STORY}</p></body></html>", "html"),
        ("a.json", json.dumps({"text": STORY}), "json"),
        ("noext", f"<!DOCTYPE html><html><body><p>{STORY}</p></body></html>", "html"),
        ("a.dat", json.dumps({"html": f"<p>{STORY}</p>"}), "json"),
        ("a.log", STORY, "text"),
        ("a.log2", "{ not json but braces }\n" + STORY, "text"),
    ],
)
def test_format_comes_from_the_extension_or_the_content(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    document = read_path(write(tmp_path / name, content))
    assert document.format == expected


def test_url_is_the_absolute_file_uri_and_the_body_is_text(tmp_path: Path) -> None:
    path = write(tmp_path / "story one.txt", STORY)
    relative = Path(os.path.relpath(path))
    document = read_path(relative)
    assert document.url == path.resolve().as_uri()
    assert document.url.startswith("file:///") and "story%20one.txt" in document.url
    assert document.body == STORY
    assert document.source.kind == "file"
    assert document.article_id == read_path(path).article_id


def test_json_file_hands_its_metadata_over_as_hints(tmp_path: Path) -> None:
    data = {"title": "Troops gone", "text": STORY, "url": "https://example.org/x", "published": "2025-02-01"}
    document = read_path(write(tmp_path / "a.json", json.dumps(data)))
    assert (document.title, document.published) == ("Troops gone", "2025-02-01")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[1, 2, 3]", "must be an object"),
        ('{"title": "no body"}', 'no non-empty "text" or "html"'),
        ('{"text": "   "}', 'no non-empty "text" or "html"'),
        ('{"text": "x", "title": 5}', '"title" must be a string'),
        ('{"text": "x",', "not valid JSON"),
    ],
)
def test_json_that_is_not_an_article_is_refused(tmp_path: Path, content: str, reason: str) -> None:
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(InputError) as caught:
        read_path(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_byte_order_marks_are_honoured(tmp_path: Path) -> None:
    text = "Северокорейские войска покинули Курскую область."
    for codec, mark in [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ]:
        path = write(tmp_path / f"{codec}.txt", mark + text.encode(codec))
        assert read_path(path).body == text, codec


def test_html_declared_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1251"><title>Курск</title></head><p>Войска</p></html>'
    document = read_path(write(tmp_path / "ru.html", page.encode("cp1251")))
    assert "Курск" in document.body and "Войска" in document.body
    old_style = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head>'
        "<body><p>Les soldats nord-coréens — partis</p></body></html>"
    )
    # Browsers read an ISO-8859-1 label as windows-1252 (which has the dash).
    document = read_path(write(tmp_path / "fr.htm", old_style.encode("cp1252")))
    assert "nord-coréens — partis" in document.body


def test_xml_declaration_charset_is_honoured(tmp_path: Path) -> None:
    page = '<?xml version="1.0" encoding="koi8-r"?><html><body><p>Курская область</p></body></html>'
    assert "Курская область" in read_path(write(tmp_path / "a.xhtml", page.encode("koi8-r"))).body


def test_invalid_utf8_names_the_file_and_the_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.txt", "Les soldats nord-coréens".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        read_path(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid UTF-8")
    assert "offset 20" in message  # the "é"
    assert "\n" not in message


def test_text_file_does_not_get_to_declare_a_charset(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", '<meta charset="windows-1251"> Курск'.encode("cp1251"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        read_path(path)


def test_bytes_that_break_the_declared_charset_are_reported_as_such(tmp_path: Path) -> None:
    path = write(tmp_path / "a.html", b'<meta charset="utf-8"><p>caf\xe9</p>')
    with pytest.raises(InputError, match=r"not valid UTF-8 \(the charset it declares\): byte 0xe9 at offset"):
        read_path(path)


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        b"\x1f\x8b\x08\x00" + os.urandom(2000),
        b"ELF" + bytes([1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16]) * 200,
    ],
)
def test_binary_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "picture.txt", content)
    with pytest.raises(InputError, match="binary file") as caught:
        read_path(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "file is empty"), (b" \n\t\r\n  ", "only white space")]
)
def test_empty_file_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path / "empty.md", content)
    with pytest.raises(InputError, match=reason):
        read_path(path)


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:  # a sparse 11 MB file: reading it would take its whole size
        handle.truncate(11 * 1024 * 1024)
    with pytest.raises(InputError) as caught:
        read_path(path)
    assert (
        str(caught.value) == f"{path}: file is 11 MB, over the 10 MB size limit (NEWSWATCH_MAX_ARTICLE_BYTES)"
    )
    small = write(tmp_path / "small.txt", STORY * 10)
    with pytest.raises(InputError, match="over the 100 bytes size limit"):
        read_path(small, max_bytes=100)
    assert read_path(small, max_bytes=len(STORY) * 10).body == STORY * 10


def test_missing_folder_and_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_path(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a folder"):
        read_path(tmp_path)
    locked = write(tmp_path / "locked.txt", STORY)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(InputError, match="permission denied"):
            read_path(locked)
    finally:
        locked.chmod(0o644)


def test_folders_expand_to_their_files_recursively_sorted_without_hidden_ones(tmp_path: Path) -> None:
    for name in ["b.txt", "a.md", "sub/c.html", "sub/.hidden.txt", ".git/config", "sub/deeper/d.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write(tmp_path / name, STORY)
    single = write(tmp_path.parent / f"{tmp_path.name}-single.txt", STORY)
    found = list(iter_paths([single, tmp_path, tmp_path / "missing.txt"]))
    assert found == [
        single,
        tmp_path / "a.md",
        tmp_path / "b.txt",
        tmp_path / "sub/c.html",
        tmp_path / "sub/deeper/d.json",
        tmp_path / "missing.txt",
    ]


def test_stdin_is_sniffed_and_identified_by_content() -> None:
    document = read_stdin(STORY.encode())
    assert document.format == "text" and document.body == STORY
    assert document.url.startswith("stdin:")
    assert document.article_id != read_stdin(b"other text").article_id
    assert read_stdin(json.dumps({"html": "<p>x</p>"}).encode()).format == "json"
    with pytest.raises(InputError, match=r"^<stdin>: input is empty"):
        read_stdin(b"  \n")
    with pytest.raises(InputError, match="over the 10 bytes size limit"):
        read_stdin(STORY.encode(), max_bytes=10)
