"""Parley: an LLM chat and image bot for Discord and Slack (the platform-neutral core)."""
