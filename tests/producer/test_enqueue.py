"""enqueue_documents on a real Redis: dedup by URL and content, batching, the ledger written with the job."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB
from newswatch.settings import Settings
from producer.enqueue import enqueue_documents

SETTINGS = Settings(batch_size=3, dedup_window=60, job_timeout=45)


def web_article(number: int, body: str | None = None) -> Document:
    return Document(
        url=f"https://news.example.org/world/{number}",
        format="text",
        body=body if body is not None else f"Dispatch {number}: reporters counted convoys near the border.",
        source=Source(kind="feed", name="example"),
    )


def file_article(name: str, body: str) -> Document:
    return Document(url=f"file:///seeds/{name}", format="text", body=body, source=Source(kind="file"))


def queued_payloads(client: redis.Redis) -> list[list[dict]]:
    """Each queued job's single argument, read from the raw job hash and decoded as JSON (not pickle)."""
    payloads = []
    for job_id in client.lrange("rq:queue:" + ARTICLES_QUEUE, 0, -1):
        raw = client.hget(b"rq:job:" + job_id, "data")
        function, _instance, args, kwargs = json.loads(zlib.decompress(raw))
        assert function == PROCESS_BATCH_JOB
        assert kwargs == {}
        payloads.append(args[0])
    return payloads


def test_batches_of_batch_size_with_json_payload_and_timeout(redis_client: redis.Redis) -> None:
    documents = [web_article(n) for n in range(7)]
    result = enqueue_documents(redis_client, documents, SETTINGS, source="test")

    assert len(result.accepted) == 7 and result.duplicates == []
    assert len(result.job_ids) == 3
    payloads = queued_payloads(redis_client)
    assert [len(batch) for batch in payloads] == [3, 3, 1]
    assert [Document.from_json(item) for batch in payloads for item in batch] == documents
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    assert all(job.timeout == 45 for job in queue.get_jobs())


def test_same_url_is_a_duplicate_even_with_new_text(redis_client: redis.Redis) -> None:
    enqueue_documents(redis_client, [web_article(1)], SETTINGS)
    again = enqueue_documents(
        redis_client, [web_article(1, body="Updated: the convoy turned back.")], SETTINGS
    )

    assert again.accepted == [] and len(again.duplicates) == 1 and again.job_ids == []
    assert len(queued_payloads(redis_client)) == 1


def test_same_content_under_another_url_is_a_duplicate(redis_client: redis.Redis) -> None:
    body = "A wire story that two sites republished word for word."
    first = enqueue_documents(redis_client, [web_article(1, body)], SETTINGS)
    second = enqueue_documents(redis_client, [web_article(2, body), file_article("copy.txt", body)], SETTINGS)

    assert len(first.accepted) == 1
    assert second.accepted == [] and len(second.duplicates) == 2


def test_duplicates_within_one_call_are_dropped(redis_client: redis.Redis) -> None:
    result = enqueue_documents(redis_client, [web_article(1), web_article(1), web_article(2)], SETTINGS)

    assert [d.url for d in result.accepted] == [web_article(1).url, web_article(2).url]
    assert len(result.duplicates) == 1


def test_an_edited_file_is_new_but_the_same_text_is_not(redis_client: redis.Redis) -> None:
    enqueue_documents(redis_client, [file_article("a.txt", "First version of the report.")], SETTINGS)
    edited = enqueue_documents(
        redis_client, [file_article("a.txt", "Second version, with casualties.")], SETTINGS
    )
    unchanged = enqueue_documents(
        redis_client, [file_article("a.txt", "Second version, with casualties.")], SETTINGS
    )

    assert len(edited.accepted) == 1
    assert len(unchanged.duplicates) == 1


def test_urls_to_fetch_are_not_duplicates_of_each_other(redis_client: redis.Redis) -> None:
    """A "url" document has an empty body: the empty content must not make every URL a duplicate."""
    urls = [Document(url=f"https://news.example.org/{n}", format="url", body="") for n in range(3)]
    result = enqueue_documents(redis_client, urls, SETTINGS)

    assert len(result.accepted) == 3


def test_seen_keys_expire_with_the_window(redis_client: redis.Redis) -> None:
    enqueue_documents(redis_client, [web_article(1)], SETTINGS)

    seen = redis_client.keys(keys.seen_url("*")) + redis_client.keys(keys.seen_hash("*"))
    assert len(seen) == 2
    assert all(0 < redis_client.ttl(key) <= 60 for key in seen)


def test_pending_ledger_holds_every_accepted_article(redis_client: redis.Redis) -> None:
    documents = [web_article(n) for n in range(4)]
    enqueue_documents(redis_client, documents, SETTINGS)

    ledger = redis_client.hgetall(keys.PENDING)
    assert {key.decode() for key in ledger} == {d.article_id for d in documents}
    assert Document.from_json(json.loads(ledger[documents[0].article_id.encode()])) == documents[0]
    assert redis_client.hget(keys.STATS, keys.STAT_ACCEPTED) == b"4"


def test_ledger_job_and_seen_keys_are_one_transaction(redis_client: redis.Redis) -> None:
    """Seen keys, ledger entries and the job push run inside one MULTI/EXEC, as the server's MONITOR shows:
    no ledger entry without its job, no article marked seen without being enqueued, even on a crash."""
    with redis_client.monitor() as monitor:
        enqueue_documents(redis_client, [web_article(1), web_article(2)], SETTINGS)
        redis_client.echo("end of test")
        commands = []
        while not commands or "end of test" not in commands[-1]:
            commands.append(monitor.next_command()["command"])

    multi = commands.index("MULTI")
    exec_ = commands.index("EXEC", multi)
    inside = commands[multi:exec_]
    assert any(c.startswith("HSET " + keys.PENDING) for c in inside)
    assert any(c.startswith("RPUSH rq:queue:" + ARTICLES_QUEUE) for c in inside)
    assert sum(c.startswith("SET newswatch:seen:") for c in inside) == 4
    outside = commands[:multi] + commands[exec_:]
    assert not any(
        c.startswith(("HSET " + keys.PENDING, "RPUSH rq:queue", "SET newswatch:seen")) for c in outside
    )


def test_source_hint_stays_in_the_payload(redis_client: redis.Redis) -> None:
    document = replace(web_article(9), title="Troops seen near Sudzha", published="2024-12-01T10:00:00Z")
    enqueue_documents(redis_client, [document], SETTINGS, source="feeds")

    (batch,) = queued_payloads(redis_client)
    assert batch[0]["title"] == "Troops seen near Sudzha"
    assert batch[0]["source"] == {"kind": "feed", "name": "example", "url": "", "tags": []}
