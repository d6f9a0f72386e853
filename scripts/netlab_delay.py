#!/usr/bin/env python3
"""A transparent TCP delay relay for scripts/netlab.sh on kernels without sch_netem.

Runs inside an agent host (network namespace). netlab.sh redirects the host's TCP
connections to the aggregator host to this relay (iptables nat OUTPUT REDIRECT, skipping
packets with the relay's own firewall mark, MARK below); the relay reads each connection's
original destination (SO_ORIGINAL_DST), connects there itself, and forwards every chunk in each direction DELAY
seconds after it arrived, in order. So the host sees one-way latency DELAY each way (RTT
2·DELAY) on every round trip its protocol makes; rate and loss stay with tbf and iptables on
the host's link. Unlike netem it delays the byte stream above TCP, not packets: TCP's own
window growth over a long path is not reproduced.

  netlab_delay.py --port PORT --delay SECONDS
"""
import argparse
import asyncio
import socket
import struct

SO_ORIGINAL_DST = 80
MARK = 0x77  # netlab.sh's REDIRECT rule skips packets with this mark (the relay's own)


def original_destination(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, = struct.unpack("!H", raw[2:4])
    return socket.inet_ntoa(raw[4:8]), port


async def pump(reader, writer, delay):
    """Forwards chunks from reader to writer, each `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write())


async def serve(client_reader, client_writer, delay):
    upstream_writer = None
    try:
        host, port = original_destination(client_writer.get_extra_info("socket"))
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
        upstream.setblocking(False)
        await asyncio.get_running_loop().sock_connect(upstream, (host, port))
        upstream_reader, upstream_writer = await asyncio.open_connection(sock=upstream)
        await asyncio.gather(pump(client_reader, upstream_writer, delay), pump(upstream_reader, client_writer, delay))
    except (ConnectionError, OSError):
        pass
    finally:
        for w in (client_writer, upstream_writer):
            if w is not None:
                w.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay", type=float, required=True, help="one-way delay in seconds")
    args = p.parse_args()
    server = await asyncio.start_server(lambda r, w: serve(r, w, args.delay), "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
