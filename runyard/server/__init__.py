"""The HTTP server: the JSON API (and later the web UI) on the operations layer."""
