#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""edge_https.py — a loopback HTTPS server standing in for Traefik at the
edge (edge.ip:443) in tests: Traefik itself cannot run here, and what the
verification checks is what a client sees of it (the certificate chain, the
name, the status a route answers).

Usage: edge_https.py --port P [--port-file F] --cert CHAIN --key KEY [--reload]
                     [--route HOST=STATUS]... [--record-dir DIR]

  * Listens on 127.0.0.1 only; --port 0 picks a free port. Once listening it
    prints "edge_https: listening on https://127.0.0.1:PORT" and, with
    --port-file, writes PORT (a line) to F (renamed into place, so a reader
    never sees half of it).
  * TLS 1.2 or later with the certificate chain (PEM: the leaf, then its
    issuers) and the private key given, for any server name: as Traefik with
    a TLSStore's default certificate, the client decides whether that
    certificate is good for the name it asked for. HTTP/1.1 (ALPN http/1.1).
  * --reload: CHAIN and KEY may appear or change while it runs (the demo
    starts it before the provisioner has made the certificate): each
    handshake with a server name uses them as they are then; until they
    exist, handshakes fail.
  * A request is answered by its Host header (without the port, any case):
      - a route HOST=STATUS: STATUS with a small HTML page; 401 as Traefik's
        basicAuth middleware answers it (WWW-Authenticate: Basic
        realm="traefik", "401 Unauthorized"); a 3xx with Location
        https://HOST/;
      - any other host: 404 "404 page not found", Traefik's words for a
        request no router matches.
    HEAD gets the headers only; a request body is read and dropped.
  * Every request (not a failed TLS handshake, nor one http.server refuses
    before it has a method and path: those go to stderr only) is recorded
    as one JSON line {"node": "edge", "host", "sni" (the server name the
    client sent in its ClientHello, null without one), "method", "path"
    (without the query), "status", "time"} appended to DIR/edge-https.jsonl
    with --record-dir (made if missing), and, when SIM_RECORD_DIR is set,
    to $SIM_RECORD_DIR/TESTDIR/edge-https.jsonl (sim_record.py,
    tests/README.md).
  * SIGTERM or SIGINT: stops listening and exits 0.

Exit status 2: bad arguments, or a certificate or key that cannot be used.
"""
import argparse
import html
import http.server
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_record  # noqa: E402

NOT_FOUND = b"404 page not found\n"
UNAUTHORIZED = b"401 Unauthorized\n"
HANDSHAKE_TIMEOUT_S = 10


def host_only(value):
    """The host of a Host header: without the port, lower case
    ("[::1]:443" -> "::1")."""
    h = (value or "").strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def parse_route(s):
    host, sep, status = s.partition("=")
    if not sep or not host or not status.isdigit() or not 100 <= int(status) <= 599:
        raise argparse.ArgumentTypeError("%r is not HOST=STATUS (a status 100..599)" % s)
    return host_only(host), int(status)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a connection left idle is closed

    def setup(self):
        # the handshake here, in this connection's thread, not in accept()
        self.request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            self.request.do_handshake()
            self.handshake_ok = True
        except (ssl.SSLError, OSError) as e:
            self.handshake_ok = False
            sys.stderr.write("edge_https: TLS handshake with %s failed: %s\n" % (self.client_address[0], e))
        super().setup()

    def handle(self):
        if self.handshake_ok:
            super().handle()

    def log_message(self, fmt, *args):
        sys.stderr.write("edge_https: %s %s\n" % (self.address_string(), fmt % args))

    def version_string(self):
        return ""  # Traefik sends no Server header

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)
        host = host_only(self.headers.get("Host"))
        status = self.server.routes.get(host)
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]
        if status is None:
            status, body = 404, NOT_FOUND
        elif status == 401:
            body = UNAUTHORIZED
            headers.append(("WWW-Authenticate", 'Basic realm="traefik"'))
        else:
            reason = self.responses.get(status, ("",))[0]
            body = ("<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n<body><h1>%s</h1><p>%d %s</p>"
                    "</body></html>\n" % (status, reason, html.escape(host), status, reason)).encode()
            headers = [("Content-Type", "text/html; charset=utf-8")]
            if 300 <= status < 400:
                headers.append(("Location", "https://%s/" % host))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)
        self.server.record({"node": "edge", "host": host, "sni": getattr(self.request, "sni_name", None),
                            "method": self.command, "path": urllib.parse.urlsplit(self.path).path,
                            "status": status, "time": time.time()})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = answer


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, ctx, routes, recorder):
        self.ctx, self.routes, self.recorder = ctx, routes, recorder
        self.rec_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def record(self, obj):
        with self.rec_lock:
            self.recorder.record(obj)


def sni_seen(sslsock, name, ctx):
    """The SNI callback: keeps the name the client asked for on its socket."""
    sslsock.sni_name = name
    return None


class Reloader:
    """--reload: a server context for the certificate files as they are at
    each handshake (kept while their modification times stay)."""

    def __init__(self, cert, key):
        self.cert, self.key, self.seen, self.ctx = cert, key, None, None
        self.lock = threading.Lock()

    def current(self):
        try:
            stamp = (os.stat(self.cert).st_mtime_ns, os.stat(self.key).st_mtime_ns)
        except OSError:
            return None
        with self.lock:
            if stamp != self.seen:
                try:
                    self.ctx = new_context(self.cert, self.key)
                    self.seen = stamp
                except (OSError, ssl.SSLError):
                    return None  # half written: the next handshake tries again
            return self.ctx

    def sni(self, sslsock, name, ctx):
        sslsock.sni_name = name
        c = self.current()
        if c is not None:
            sslsock.context = c
        return None


def new_context(cert, key, sni=sni_seen):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sni_callback = sni
    return ctx


def main():
    ap = argparse.ArgumentParser(description="a loopback HTTPS server standing in for Traefik at the edge")
    ap.add_argument("--port", type=int, required=True, help="the port on 127.0.0.1 (0: pick one)")
    ap.add_argument("--port-file", help="write the port to this file once listening")
    ap.add_argument("--cert", required=True, help="the certificate chain (PEM: leaf, then issuers)")
    ap.add_argument("--key", required=True, help="the leaf's private key (PEM)")
    ap.add_argument("--route", action="append", type=parse_route, default=[], metavar="HOST=STATUS")
    ap.add_argument("--record-dir", help="append each request to DIR/edge-https.jsonl")
    ap.add_argument("--reload", action="store_true", help="read CHAIN and KEY again when they change")
    a = ap.parse_args()
    if not 0 <= a.port <= 65535:
        ap.error("--port %d is not a port" % a.port)

    if a.reload:
        reloader = Reloader(a.cert, a.key)
        ctx = reloader.current() or new_context(None, None)
        ctx.sni_callback = reloader.sni
    else:
        try:
            ctx = new_context(a.cert, a.key)
        except (OSError, ssl.SSLError) as e:
            sys.stderr.write("edge_https: cannot use %s with %s: %s\n" % (a.cert, a.key, e))
            return 2

    rec = sim_record.Recorder("edge", "https")
    if a.record_dir:
        os.makedirs(a.record_dir, exist_ok=True)
        rec.paths.insert(0, os.path.join(os.path.abspath(a.record_dir), "edge-https.jsonl"))

    srv = Server(a.port, ctx, dict(a.route), rec)
    port = srv.server_address[1]

    def bye(signum, frame):
        raise SystemExit(0)  # out of serve_forever at once, in the main thread
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    if a.port_file:
        tmp = "%s.%d.tmp" % (a.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print("edge_https: listening on https://127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
