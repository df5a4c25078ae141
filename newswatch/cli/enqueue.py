"""`newswatch enqueue PATH... | URL | -`: hand files, folders, URLs or stdin to the workers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from newswatch.cli.common import (
    CommandError,
    file_progress,
    load_configuration,
    open_connection,
    reports_errors,
)

if TYPE_CHECKING:
    import redis

    from newswatch.messages import Document
    from newswatch.settings import Settings

#: Documents read before they are enqueued together; bounds memory on a large folder.
CHUNK = 500
#: Seconds `--wait` waits before it says that no worker is running.
NO_WORKER_WARNING = 5.0
#: Default seconds `--wait` waits for the workers before giving up.
WAIT_TIMEOUT = 300.0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="enqueue files, folders, URLs or stdin for the workers",
        description="Enqueue articles for the workers: files, folders (recursively), http(s) URLs (fetched "
        "by the worker) or - for standard input. Articles seen within the dedup window (same URL or "
        "same content) are skipped. With --wait, wait until they are processed and print their matches; "
        "the exit status is then 0 if anything matched, 1 if nothing did.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH|URL|-", help="what to enqueue")
    parser.add_argument("--wait", action="store_true", help="wait until processed and print the matches")
    parser.add_argument(
        "--timeout",
        type=float,
        default=WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long --wait waits for the workers (default {WAIT_TIMEOUT:.0f})",
    )
    parser.add_argument("--json", action="store_true", help="with --wait: one JSON object per alert")
    parser.set_defaults(handler=enqueue_command)


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def url_document(text: str) -> Document:
    """A URL for the worker to fetch, made canonical (tracking parameters dropped)."""
    import courlan

    from newswatch.messages import Document, Source

    try:
        url = courlan.normalize_url(text.strip(), strict=True)
    except ValueError:
        raise CommandError(f"{text}: not a valid URL") from None
    return Document(url=url, format="url", body="", source=Source(kind="url", url=url))


def read_inputs(inputs: list[str], settings: Settings, errors: list[str]) -> Iterator[str | Document]:
    """Documents from every input; an input that cannot be read adds a line to `errors`.

    File paths are yielded first (as str) so that the caller can count them for a progress bar.
    """
    from newswatch.documents import InputError, iter_paths, read_stdin

    for given in inputs:
        if given == "-":
            data = sys.stdin.buffer.read(settings.max_article_bytes + 1)
            try:
                yield read_stdin(data, settings.max_article_bytes)
            except InputError as error:
                errors.append(str(error))
        elif is_url(given):
            yield url_document(given)
        else:
            yield from (str(path) for path in iter_paths([given]))


@reports_errors
def enqueue_command(args: argparse.Namespace) -> int:
    from newswatch.documents import InputError, read_path
    from producer.enqueue import EnqueueResult, enqueue_documents

    settings = load_configuration()
    errors: list[str] = []
    items = list(read_inputs(args.inputs, settings, errors))
    connection = open_connection(settings)
    log_before = last_alert_id(connection)
    result = EnqueueResult()
    documents: list[Document] = []
    paths = sum(isinstance(item, str) for item in items)
    with file_progress("enqueueing") as progress:
        done = 0
        for item in items:
            if isinstance(item, str):
                done += 1
                progress(done, paths)
                try:
                    item = read_path(item, settings.max_article_bytes)
                except InputError as error:
                    errors.append(str(error))
                    continue
            documents.append(item)
            if len(documents) >= CHUNK:
                result.merge(enqueue_documents(connection, documents, settings, source="cli"))
                documents = []
        if documents:
            result.merge(enqueue_documents(connection, documents, settings, source="cli"))
    for line in errors:
        print(f"newswatch enqueue: {line}", file=sys.stderr)
    _print_result(result, sys.stdout if not args.json else sys.stderr)
    if args.wait and result.accepted:
        ids = [document.article_id for document in result.accepted]
        matched = _wait_and_report(connection, settings, ids, log_before, args)
        if errors:
            return 2
        return 0 if matched else 1
    if args.wait and not errors:
        return 1  # nothing new was processed, so nothing matched
    return 2 if errors else 0


def _print_result(result: Any, out: Any) -> None:
    listed = len(result.accepted) + len(result.duplicates) <= 50
    if listed:
        for document in result.accepted:
            print(f"enqueued  {document.article_id}  {_name(document)}", file=out)
        for document in result.duplicates:
            print(f"duplicate {document.article_id}  {_name(document)}", file=out)
    print(
        f"{len(result.accepted)} enqueued in {len(result.job_ids)} jobs, "
        f"{len(result.duplicates)} duplicates skipped",
        file=out,
    )


def _name(document: Document) -> str:
    if document.source.kind in ("file", "cli") and document.source.name:
        return document.source.name
    return document.url


def last_alert_id(connection: redis.Redis) -> str:
    from newswatch import keys

    last = connection.xrevrange(keys.ALERTS_STREAM, count=1)
    if not last:
        return "0"
    entry_id = last[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _wait_and_report(
    connection: redis.Redis, settings: Settings, article_ids: list[str], after: str, args: argparse.Namespace
) -> bool:
    """Wait until the articles leave the pending ledger, print their alerts and failures; True on a match."""
    from newswatch import keys
    from newswatch.alert_log import format_alert_line
    from producer.enqueue import pending_among

    started = time.monotonic()
    deadline = started + args.timeout
    warned = False
    remaining = pending_among(connection, article_ids)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.2)
        remaining = pending_among(connection, list(remaining))
        if not warned and time.monotonic() - started > NO_WORKER_WARNING and not _workers_alive(connection):
            print(
                "newswatch enqueue: no worker is running; start `newswatch worker` or `newswatch run`",
                file=sys.stderr,
            )
            warned = True
    wanted = set(article_ids)
    alerts = alerts_since(connection, after, wanted)
    for alert in alerts:
        print(json.dumps(alert, ensure_ascii=False) if args.json else format_alert_line(alert))
    failed = connection.hmget(keys.FAILED, article_ids)
    for article_id, raw in zip(article_ids, failed, strict=True):
        if raw is not None:
            error = json.loads(raw).get("error", "")
            print(f"newswatch enqueue: {article_id} failed: {error}", file=sys.stderr)
    if remaining:
        print(
            f"newswatch enqueue: {len(remaining)} articles still pending after {args.timeout:.0f} s",
            file=sys.stderr,
        )
    return bool(alerts)


def alerts_since(
    connection: redis.Redis, after: str, article_ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every alert written after the stream entry `after` (for the given articles only, when given)."""
    from newswatch.alert_log import AlertLog

    alert_log = AlertLog(connection)
    found: list[dict[str, Any]] = []
    while True:
        page = alert_log.since(after, count=1000)
        if not page:
            return found
        found += [
            entry.alert
            for entry in page
            if article_ids is None or entry.alert.get("article", {}).get("id") in article_ids
        ]
        after = page[-1].entry_id


def _workers_alive(connection: redis.Redis) -> bool:
    from rq import Queue, Worker

    from newswatch.queues import ARTICLES_QUEUE

    return Worker.count(queue=Queue(ARTICLES_QUEUE, connection=connection)) > 0
