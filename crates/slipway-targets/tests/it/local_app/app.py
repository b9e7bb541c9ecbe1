#!/usr/bin/env python3
# A tiny HTTP app for the local target's tests: `/up` answers 200 unless the control directory
# (the first argument) holds `unhealthy` or `unhealthy-<instance>`; `/slow?ms=N` answers after N
# milliseconds; `/env/NAME` answers with the environment variable NAME (404 when unset); anything
# else answers with the version and instance. A build may begin with
# `ERROR_RATE = 0.2` (that share of answers is a 500) and `LATENCY_MS = 300` (added to every
# answer but `/up`) to play a bad version.
import http.server
import os
import random
import sys
import time

ERROR_RATE = globals().get("ERROR_RATE", 0.0)
LATENCY_MS = globals().get("LATENCY_MS", 0)

control = sys.argv[1] if len(sys.argv) > 1 else None
instance = os.environ.get("SLIPWAY_INSTANCE", "")
version = os.environ.get("SLIPWAY_VERSION", "")


def flagged(name):
    return control is not None and (
        os.path.exists(os.path.join(control, name))
        or os.path.exists(os.path.join(control, name + "-" + instance))
    )


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path == "/up":
            if flagged("unhealthy"):
                return self.reply(503, "down\n")
            return self.reply(200, "up\n")
        if self.path.startswith("/env/"):
            name = self.path[len("/env/"):]
            if name not in os.environ:
                return self.reply(404, "%s is not set\n" % name)
            return self.reply(200, os.environ[name])
        if self.path.startswith("/slow"):
            ms = int(self.path.split("ms=")[1]) if "ms=" in self.path else 1000
            time.sleep(ms / 1000)
        if LATENCY_MS:
            time.sleep(LATENCY_MS / 1000)
        if random.random() < ERROR_RATE:
            return self.reply(500, "%s failed on purpose\n" % version)
        self.reply(200, "%s %s\n" % (version, instance))

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


names = sorted(k for k in os.environ if k.startswith("SLIPWAY_") or k == "PORT")
print("variables: " + " ".join(names), flush=True)
print("listening on %s in %s" % (os.environ["PORT"], os.getcwd()), flush=True)
Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
