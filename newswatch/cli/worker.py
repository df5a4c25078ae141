"""`newswatch worker`: one RQ worker process on one newswatch queue (articles or deliveries)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run an RQ worker on the articles (or deliveries) queue",
        description=(
            "Run one RQ worker process on one queue, with the JSON serializer, a scheduler for delayed "
            "retries, and heartbeats tuned so a crashed worker's job comes back within about a minute. "
            "SIGTERM finishes the current job, then exits. Run several processes to scale. The same with "
            "plain rq: rq worker --url URL --serializer rq.serializers.JSONSerializer "
            "--worker-class worker.runner.ArticleWorker --with-scheduler --maintenance-interval 10 "
            "--job-monitoring-interval 5 --worker-ttl 30 newswatch:articles"
        ),
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument(
        "--queue", choices=("articles", "deliveries"), default="articles", help="the queue to work on"
    )
    parser.add_argument(
        "--worker-class",
        choices=("simple", "fork"),
        default="simple",
        help="simple: jobs run in this process (default, fastest); fork: each job in a forked child",
    )
    parser.add_argument("--no-scheduler", action="store_true", help="do not run RQ's scheduler here")
    parser.add_argument("--max-jobs", type=int, metavar="N", help="exit after N jobs")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ERROR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from newswatch.connection import RedisUnavailable, connect
    from newswatch.logs import configure_logging
    from newswatch.redis_server import EmbeddedServerError
    from newswatch.settings import SettingsError, load_settings
    from worker.jobs import WatchlistUnavailable
    from worker.runner import QUEUES, run_worker
    from worker.sinks import SinkConfigError

    configure_logging(args.log_level)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"newswatch worker: {error}", file=sys.stderr)
        return 2
    try:
        connection = connect(settings)
    except (RedisUnavailable, EmbeddedServerError) as error:  # same line and status as `newswatch run`
        print(f"newswatch worker: {error}", file=sys.stderr)
        return 2
    try:
        run_worker(
            connection,
            QUEUES[args.queue],
            burst=args.burst,
            worker_class=args.worker_class,
            with_scheduler=not args.no_scheduler,
            max_jobs=args.max_jobs,
            logging_level=args.log_level.upper(),
        )
    except WatchlistUnavailable as error:
        print(f"newswatch worker: watchlist: {error}", file=sys.stderr)
        return 2
    except SinkConfigError as error:
        print(f"newswatch worker: sinks: {error}", file=sys.stderr)
        return 2
    return 0
