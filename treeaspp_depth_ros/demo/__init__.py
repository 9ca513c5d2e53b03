"""The one-command demo: synthetic camera -> depth node -> recorder with a JSON report."""
