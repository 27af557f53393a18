"""A webhook receiver of the soak's own, run as a process of the stack
(`python -m bench.soak.receiver --port N --behaviour healthy|failing --log PATH`).

`healthy` answers 204 to every delivery, after writing it (path, headers, body) as a
JSON line to its log: what it acknowledged is on disk, so the check after the drain
compares the log with the events table. `failing` fails every delivery, as a receiver
that is down does: half of them with a 500 at once, the other half by holding the
request past the deliverer's timeout (`WEBHOOK_TIMEOUT_SECONDS`, 5 s), and logs each
attempt all the same.
"""

import argparse
import http.server
import itertools
import json
import threading
import time

HANG_SECONDS = 8.0


def serve(*, port: int, behaviour: str, log_path: str) -> None:
    out = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    lock = threading.Lock()
    attempts = itertools.count()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record = {
                "path": self.path,
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "signature": self.headers.get("webhook-signature"),
                "body": body.decode("utf-8", "replace"),
                "at": time.time(),
            }
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()
                number = next(attempts)
            if behaviour == "healthy":
                status = 204
            elif number % 2:
                time.sleep(HANG_SECONDS)
                status = 503
            else:
                status = 500
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the deliverer gave up waiting, as it should

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--behaviour", choices=("healthy", "failing"), required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    serve(port=args.port, behaviour=args.behaviour, log_path=args.log)


if __name__ == "__main__":
    main()
