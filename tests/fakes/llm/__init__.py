"""A strict fake of the LLM chat APIs; see tests/fakes/llm_server.py for how to use it."""
