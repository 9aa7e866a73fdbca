#!/usr/bin/env python3
"""Calico's protocols through gRPC C-core (grpcio), the core of the Python and C++ clients.

Compiles felixbackend.proto and healthz.proto with grpcio-tools into a temporary directory,
then over `unix:PATH` channels, each first with the option grpc.default_authority set to the
socket path (what grpc-go, and so Dikastes and Calico's healthz, send as :authority) and then
with C-core's default authority:

  --capture SOCK   listens on SOCK as a bare HTTP/2 peer and prints the :authority each channel
                   sent, HPACK-decoded (`authority MODE: VALUE`): what the other lines test
  --sync SOCK      PolicySync/Sync until in_sync (`sync MODE: N messages: KIND...`)
  --authz SOCK     Healthz CheckReadiness (`readiness MODE: healthy=BOOL`)

A failed call prints `... MODE: error CODE DETAILS`; the exit status is then 1.
Needs grpcio and grpcio-tools; --capture also needs hpack.
"""

import argparse
import os
import socket
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc

MODES = ("path", "default")
PROTOS = ("felixbackend.proto", "healthz.proto")


def compile_protos(proto_dir, out_dir):
    for name in PROTOS:
        args = ["protoc", f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", name]
        if protoc.main(args) != 0:
            sys.exit(f"protoc failed on {proto_dir}/{name}")
    sys.path.insert(0, out_dir)


def channel(path, mode):
    options = [("grpc.default_authority", path)] if mode == "path" else []
    return grpc.insecure_channel(f"unix:{path}", options=options)


def failed(e):
    return f"error {e.code().name} {e.details()}"


def sync(path, mode):
    import felixbackend_pb2 as pb
    import felixbackend_pb2_grpc as pb_grpc

    with channel(path, mode) as ch:
        stream = pb_grpc.PolicySyncStub(ch).Sync(pb.SyncRequest(), timeout=10)
        kinds, count = [], 0
        try:
            for msg in stream:
                count += 1
                kind = msg.WhichOneof("payload")
                if kind not in kinds:
                    kinds.append(kind)
                if kind == "in_sync":
                    stream.cancel()
                    return f"{count} messages: {' '.join(kinds)}"
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                return failed(e)
        return f"{count} messages: {' '.join(kinds)} (stream ended before in_sync)"


def readiness(path, mode):
    import healthz_pb2 as pb
    import healthz_pb2_grpc as pb_grpc

    with channel(path, mode) as ch:
        try:
            resp = pb_grpc.HealthzStub(ch).CheckReadiness(pb.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as e:
            return failed(e)
        return f"healthy={resp.healthy}"


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return buf


def first_header_block(conn):
    """Reads the client preface and frames up to the end of the first header block."""
    conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # the server's (empty) SETTINGS
    if read_exact(conn, 24) != b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n":
        raise ValueError("no HTTP/2 client preface")
    block = b""
    while True:
        head = read_exact(conn, 9)
        length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        payload = read_exact(conn, length)
        if kind == 0x4 and not flags & 0x1:  # SETTINGS, not an ACK: acknowledge it
            conn.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
        elif kind == 0x1:  # HEADERS: strip padding and priority
            if flags & 0x8:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & 0x20:
                payload = payload[5:]
            block = payload
        elif kind == 0x9:  # CONTINUATION
            block += payload
        if kind in (0x1, 0x9) and flags & 0x4:  # END_HEADERS
            return block


def captured_authority(path, mode):
    import hpack

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(10)
    seen = {}

    def serve():
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                headers = hpack.Decoder().decode(first_header_block(conn))
                seen.update((str(k), str(v)) for k, v in headers)
        except Exception as e:  # reported below as a missing :authority
            seen["error"] = repr(e)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        import healthz_pb2 as pb
        import healthz_pb2_grpc as pb_grpc

        with channel(path, mode) as ch:
            try:
                pb_grpc.HealthzStub(ch).CheckReadiness(pb.HealthCheckRequest(), timeout=3)
            except grpc.RpcError:
                pass  # the listener never answers
    finally:
        thread.join()
        listener.close()
        os.unlink(path)
    if ":authority" not in seen:
        return f"error no :authority ({seen.get('error', 'no header block')})"
    return seen[":authority"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--proto-dir", default=os.path.join(here, "../../../proto/proto"))
    parser.add_argument("--capture")
    parser.add_argument("--sync")
    parser.add_argument("--authz")
    args = parser.parse_args()

    ok = True
    with tempfile.TemporaryDirectory() as out_dir:
        compile_protos(os.path.abspath(args.proto_dir), out_dir)
        for what, call, path in (
            ("authority", captured_authority, args.capture),
            ("sync", sync, args.sync),
            ("readiness", readiness, args.authz),
        ):
            if path is None:
                continue
            for mode in MODES:
                result = call(os.path.abspath(path), mode)
                ok = ok and not result.startswith("error ")
                print(f"{what} {mode}: {result}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
