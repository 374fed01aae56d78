"""Shared test set-up: fixture modules live beside this file and are loaded as plugins."""

pytest_plugins = [
    "fixtures_media",
    "fixtures_emulator",
    "fixtures_prefect",
    "fixtures_cli",
    "fixtures_server",
    "fixtures_ui",
]
