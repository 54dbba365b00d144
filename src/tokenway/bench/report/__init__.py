"""Report writers: lifecycle JSON, per-request JSONL, PNG plots and a self-contained HTML page."""
