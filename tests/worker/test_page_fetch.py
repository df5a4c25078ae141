"""Fetching an article page for full-text extraction: same guard and limits, HTML decoded, clear errors."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from newswatch.settings import Settings
from worker.page_fetch import PageFetchError, decode_html, fetch_page

LOCAL = Settings(allowed_hosts=("127.0.0.1",), max_article_bytes=200_000)
RUSSIAN = "Северокорейские военные покинули Курскую область, сообщили украинские офицеры в понедельник."
PAGE = "<html><head><title>Kursk</title></head><body><article><p>Войска ушли.</p></article></body></html>"


def test_a_page_is_fetched_and_decoded_by_its_charset(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/a").respond_with_data(
        PAGE.encode("windows-1251"), content_type="text/html; charset=windows-1251"
    )
    page = fetch_page(httpserver_ipv4.url_for("/a"), LOCAL)
    assert page.html == PAGE and page.status == 200 and page.url == httpserver_ipv4.url_for("/a")


def test_a_redirected_page_reports_its_final_url(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/short").respond_with_data("", status=301, headers={"Location": "/long"})
    httpserver_ipv4.expect_request("/long").respond_with_data(PAGE, content_type="text/html")
    assert fetch_page(httpserver_ipv4.url_for("/short"), LOCAL).url == httpserver_ipv4.url_for("/long")


@pytest.mark.parametrize(
    ("status", "content_type", "body", "reason"),
    [
        (404, "text/html", b"gone", "HTTP 404"),
        (200, "application/pdf", b"%PDF-1.7", r"not an HTML page \(application/pdf\)"),
        (200, "text/html", b"x" * 300_000, "larger than 200000 bytes"),
    ],
)
def test_unusable_pages_are_clear_errors(
    httpserver_ipv4: HTTPServer, status: int, content_type: str, body: bytes, reason: str
) -> None:
    httpserver_ipv4.expect_request("/p").respond_with_data(body, status=status, content_type=content_type)
    with pytest.raises(PageFetchError, match=reason):
        fetch_page(httpserver_ipv4.url_for("/p"), LOCAL)


def test_the_ssrf_guard_applies_to_pages(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/p").respond_with_data(PAGE, content_type="text/html")
    with pytest.raises(PageFetchError, match="loopback"):
        fetch_page(httpserver_ipv4.url_for("/p"), Settings())
    assert httpserver_ipv4.log == []


@pytest.mark.parametrize(
    ("body", "declared", "expected"),
    [
        ('<meta charset="iso-8859-1"><p>café</p>'.encode("latin-1"), None, "café"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>Курск</p>'.encode(
                "koi8-r"
            ),
            None,
            "Курск",
        ),
        ("<p>naïve</p>".encode(), None, "naïve"),
        ("\ufeff<p>bom</p>".encode("utf-16"), None, "bom"),
        (f"<p>{RUSSIAN}</p>".encode("cp1251"), "no-such-charset", RUSSIAN),
    ],
)
def test_html_is_decoded_by_bom_header_meta_or_guess(
    body: bytes, declared: str | None, expected: str
) -> None:
    assert expected in decode_html(body, declared)
