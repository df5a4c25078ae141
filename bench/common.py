"""What several benchmarks share: the real article texts they read, and a quiet local HTTP server."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "articles" / "aeb" / "ground-truth.json"


def article_texts() -> tuple[list[str], str]:
    """The bodies of the corpus's real articles (generated text of similar sizes when the corpus is
    absent), and a few words saying which."""
    if CORPUS.is_file():
        corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
        texts = [entry["articleBody"] for entry in corpus.values() if entry.get("articleBody")]
        return texts, f"{len(texts)} article bodies of {CORPUS.relative_to(ROOT.parent)}"
    rng = random.Random(7)
    sentence = (
        "the ministry said on monday that officials expected talks with regional leaders to resume "
        "after a week of strikes on ports power plants and rail lines across the country"
    )
    words = sentence.split(" ")
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(150, 1500))) for _ in range(181)]
    return texts, "generated text (corpus absent)"


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log on stderr (it would be most of a benchmark's output)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass


def serve_locally(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded server on 127.0.0.1 (a free port) running in a daemon thread, and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM to every process still running, then wait for each (killed after `timeout` seconds)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
