#!/usr/bin/python3
"""The RPyC classic peer: the same socket work as sockbench, driven through
conn.modules.socket of a classic server on loopback. Prints JSON lines in
sockbench's format. Every loop is bounded in time."""
import argparse
import json
import sys
import time

import rpyc


def emit(case, metric, unit, rep, value):
    print(json.dumps({"case": case, "metric": metric, "unit": unit,
                      "rep": rep, "value": value}), flush=True)


def lifecycle(rsocket, echo_port, payload):
    s = rsocket.socket(rsocket.AF_INET, rsocket.SOCK_STREAM)
    s.connect(("127.0.0.1", echo_port))
    s.sendall(payload)
    got = 0
    while got < len(payload):
        data = s.recv(len(payload) - got)
        if not data:
            raise RuntimeError("echo closed early")
        got += len(data)
    s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--echo", type=int, required=True)
    parser.add_argument("--source", type=int, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--bulk-bytes", type=int, default=64 << 20)
    args = parser.parse_args()

    conn = rpyc.classic.connect("127.0.0.1", args.port)
    rsocket = conn.modules.socket
    payload = b"p" * 64
    for rep in range(args.reps):
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            lifecycle(rsocket, args.echo, payload)
        done = 0
        start = time.monotonic()
        end = start + args.seconds
        while time.monotonic() < end:
            lifecycle(rsocket, args.echo, payload)
            done += 1
        emit("lifecycle", "rpyc.lifecycle.rate1", "1/s", rep,
             done / (time.monotonic() - start))

        # Bulk: the remote socket receives, the client gets the bytes.
        s = rsocket.socket(rsocket.AF_INET, rsocket.SOCK_STREAM)
        s.connect(("127.0.0.1", args.source))
        got = 0
        start = time.monotonic()
        end = start + args.seconds * 2
        while got < args.bulk_bytes and time.monotonic() < end:
            data = s.recv(65536)
            if not data:
                break
            got += len(data)
        emit("bulk", "rpyc.recv64k", "MB/s", rep,
             got / 1e6 / (time.monotonic() - start))
        s.close()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
