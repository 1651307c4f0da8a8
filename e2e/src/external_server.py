"""A server outside the mesh, for MeshExternalService tests.

Modes: `echo` (TCP: sends back what it receives) and `http` (answers every request with
`external <name> <path>`, after `--delay-ms` when given, or n bytes for `/bytes/<n>`).
Optionally TLS with a given certificate, a required client
certificate, and bounds on the TLS version. Listens on a loopback TCP port or a unix socket.
"""
import argparse
import http.server
import os
import socketserver
import ssl
import sys
import threading
import time


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["echo", "http"], required=True)
    p.add_argument("--name", default="external")
    p.add_argument("--port", type=int)
    p.add_argument("--unix")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    p.add_argument("--max-tls", choices=["1.2", "1.3"])
    p.add_argument("--min-tls", choices=["1.2", "1.3"])
    # Misbehaviour for policy tests (http mode): answer late, or fail the first requests.
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    return p.parse_args()


VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_context(args):
    if not args.cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    if args.max_tls:
        ctx.maximum_version = VERSIONS[args.max_tls]
    if args.min_tls:
        ctx.minimum_version = VERSIONS[args.min_tls]
    return ctx


def main():
    args = parse()
    ctx = tls_context(args)

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)

    served = {"count": 0}
    lock = threading.Lock()

    class Http(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            # `/__count`: how many other requests arrived (retries included), for the test.
            if self.path == "/__count":
                with lock:
                    body = str(served["count"]).encode()
                status = 200
            else:
                with lock:
                    served["count"] += 1
                    n = served["count"]
                if args.delay_ms:
                    time.sleep(args.delay_ms / 1000)
                status = 503 if n <= args.fail_first else 200
                body = f"external {args.name} {self.path}".encode()
                # `/bytes/<n>`: a body of n bytes, for tests that time a large response.
                if self.path.startswith("/bytes/"):
                    body = b"x" * int(self.path[len("/bytes/"):])
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    handler = Echo if args.mode == "echo" else Http

    class Tls:
        def get_request(self):
            sock, addr = super().get_request()
            if ctx is None:
                return sock, addr
            return ctx.wrap_socket(sock, server_side=True), addr

        def handle_error(self, request, client_address):
            # A refused handshake is the point of several tests: one line, not a traceback.
            print(f"connection error: {sys.exc_info()[1]}", flush=True)

    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)

        class Server(Tls, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):
                sock, _ = super().get_request()
                return sock, ("unix", 0)

        server = Server(args.unix, handler)
    else:

        class Server(Tls, socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        server = Server(("127.0.0.1", args.port), handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
