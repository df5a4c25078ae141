"""Feed polling: the feeds file, conditional fetch, parsing, entries to documents, scheduling, health."""
