"""Laptop side: the Textual app and the CLI."""
