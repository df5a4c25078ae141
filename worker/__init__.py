"""RQ jobs, sinks, and the pure processing core they wrap (worker.core)."""
