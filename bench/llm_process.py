"""`python -m bench.llm_process PORT`: the LLM fake alone in a process, for `bench stream`.

It answers each planned prompt ("stream <label> <tokens> <first token s> <gap s>") with its
scripted stream and keeps each token's write time. It prints "ready" once it listens; each "dump"
line on stdin gets the write times of the streams since the last dump back as one JSON line; it
exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bench.stream import answer
from tests.fakes.llm_server import Call, LLMFake, Script


async def serve(port: int) -> None:
    sent: dict[str, list[float]] = {}

    def respond(call: Call) -> Script:
        return answer(str(call.body["messages"][-1]["content"]), sent)

    async with LLMFake(port=port) as fake:
        fake.respond_with("workers", respond)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "dump":  # the streams finished since the last dump
                finished = {prompt: times for prompt, times in sent.items() if times}
                print(json.dumps(finished), flush=True)
                for prompt in finished:
                    del sent[prompt]


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
