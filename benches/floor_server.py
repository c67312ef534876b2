#!/usr/bin/env python3
"""Serves one fixed gzip body to every GET, as fast as the kernel allows.

benches/run points its load generator at this with the daemon's own /metrics
body, in the same run, to show what this machine's loopback and scheduler
give any server for that size and rate: the floor under tenantwatch's
/metrics latency. TCP_NODELAY is set (asyncio does it for TCP transports).

  floor_server.py BODY_FILE   (prints the port, then serves until killed)
"""

import asyncio
import sys


async def main(path):
    body = open(path, "rb").read()
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n"
            b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(body))

    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                writer.write(head + body)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
