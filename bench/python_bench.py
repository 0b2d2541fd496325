#!/usr/bin/python3
"""The Python client's figures, as JSON lines in sockbench's format:

- lifecycles/s through agent.socket_module() against RPyC classic doing the
  same through conn.modules.socket (socket, bind, listen, socket, connect,
  accept, close x3: the same function runs on both modules);
- small-op latency: RemoteSocket.getsockname() and send(64 B) against a
  bare grpcio unary call (Ping, 64 B) to the floor server, and
  getsockname() against the same RPC on the bare generated stub (the
  client layer's own cost).

Loopback only; every loop is bounded in count and time.

  python_bench.py --agent H:P --floor H:P --floor-stubs DIR [--rpyc-port P]
                  [--reps N] [--seconds S] [--count N]
"""
import argparse
import json
import statistics
import sys
import threading
import time

import grpc

import sockagent


def emit(case, metric, unit, rep, value):
    print(json.dumps({"case": case, "metric": metric, "unit": unit,
                      "rep": rep, "value": value}), flush=True)


def lifecycle(mod):
    server = mod.socket(mod.AF_INET, mod.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = mod.socket(mod.AF_INET, mod.SOCK_STREAM)
    client.connect(server.getsockname())
    conn, _ = server.accept()
    conn.close()
    client.close()
    server.close()


def rate(fn, seconds):
    end = time.monotonic() + min(0.2, seconds)
    while time.monotonic() < end:  # warm-up
        fn()
    done = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        fn()
        done += 1
    return done / (time.monotonic() - start)


def latencies(fns, count, limit_s, block=100):
    """Samples (microseconds, sorted) per function, taken in blocks of
    `block` calls in turn (a x100, b x100, ..., a x100, ...): every function
    sees the same load of this shared machine, and no call pays for a switch
    from another channel."""
    for fn in fns:  # warm-up
        for _ in range(min(100, count)):
            fn()
    samples = [[] for _ in fns]
    deadline = time.monotonic() + limit_s
    clock = time.perf_counter_ns
    while len(samples[0]) < count and time.monotonic() < deadline:
        for fn, out in zip(fns, samples):
            fn()  # the first call after a switch is not sampled
            for _ in range(min(block, count - len(out))):
                t0 = clock()
                fn()
                out.append((clock() - t0) / 1000.0)
    for out in samples:
        out.sort()
    return samples


def emit_latency(metric, rep, samples):
    emit("python", f"{metric}.p50", "us", rep, statistics.median(samples))
    emit("python", f"{metric}.p99", "us", rep,
         samples[min(len(samples) - 1, int(len(samples) * 0.99))])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--floor-stubs", required=True)
    parser.add_argument("--rpyc-port", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()

    sys.path.insert(0, args.floor_stubs)
    import echo_pb2
    import echo_pb2_grpc

    rpyc_conn = None
    if args.rpyc_port:
        import rpyc
        rpyc_conn = rpyc.classic.connect("127.0.0.1", args.rpyc_port)

    floor_channel = grpc.insecure_channel(args.floor)
    grpc.channel_ready_future(floor_channel).result(timeout=10)
    floor = echo_pb2_grpc.EchoStub(floor_channel)
    ping = echo_pb2.PingRequest(payload=b"x" * 64)
    limit_s = 20 if args.count > 1000 else 3

    with sockagent.Agent(args.agent, ttl=300) as agent:
        mod = agent.socket_module()
        # Small ops: a connected pair; the accepted side sinks agent-side so
        # the sends never fill the socket buffers.
        server = agent.create_server(("127.0.0.1", 0))
        client = agent.create_connection(server.getsockname())
        conn, _ = server.accept()
        sink = threading.Thread(target=conn.traffic, args=("sink",),
                                daemon=True)
        sink.start()
        payload = b"p" * 64
        raw_stub = agent._stub
        raw_request = sockagent._stubs.pb.GetSockNameRequest(
            handle=client.handle)
        raw_metadata = agent._metadata
        for rep in range(args.reps):
            calls = {
                "pyfloor.unary64": lambda: floor.Ping(ping),
                "python.getsockname": client.getsockname,
                # The same RPC on the generated stub alone: what the client
                # layer adds is the difference.
                "python.rawstub.getsockname": lambda: raw_stub.GetSockName(
                    raw_request, metadata=raw_metadata),
                "python.send64": lambda: client.send(payload),
            }
            for metric, samples in zip(calls, latencies(
                    list(calls.values()), args.count, limit_s)):
                emit_latency(metric, rep, samples)
            emit("lifecycle", "python.lifecycle.rate1", "1/s", rep,
                 rate(lambda: lifecycle(mod), args.seconds))
            if rpyc_conn is not None:
                rsocket = rpyc_conn.modules.socket
                emit("lifecycle", "rpyc.pylifecycle.rate1", "1/s", rep,
                     rate(lambda: lifecycle(rsocket), args.seconds))
        client.close()
        sink.join(30)
        conn.close()
        server.close()
    if rpyc_conn is not None:
        rpyc_conn.close()
    floor_channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
