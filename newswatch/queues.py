"""Names shared by producer and worker: RQ queues, job functions and Redis keys."""

ARTICLES_QUEUE = "newswatch:articles"
DELIVERIES_QUEUE = "newswatch:deliveries"

#: The job function the producer enqueues; its single argument is a list of Document.to_json() dicts.
PROCESS_BATCH_JOB = "worker.jobs.process_batch"

KEY_PREFIX = "newswatch:"
