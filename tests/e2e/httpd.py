#!/usr/bin/python3
"""A static HTTP server for tests, with Range requests (206) and a fault
mode: the first GET of each file is cut off after --cut bytes, so a client
has to resume. Listens on 127.0.0.1 only; prints its port on the first
line; logs one line per request to stderr.

    httpd.py DIR [--port N] [--cut BYTES]
"""
import argparse
import http.server
import os
import sys

args = None
cut_done = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("httpd: %s %s\n" % (self.address_string(), fmt % a))
        sys.stderr.flush()

    def do_GET(self):
        name = os.path.basename(self.path.split("?")[0])
        path = os.path.join(args.dir, name)
        if not name or not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if args.cut and name not in cut_done and len(body) > args.cut:
            cut_done.add(name)
            self.wfile.write(body[: args.cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cut", type=int, default=0)
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
