"""A webhook receiver on loopback: answers each request as told, and keeps what it got."""

import http.server
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    # The status to answer with, or ("sleep", seconds) to stall before a 200.
    answers: list = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self):
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def receiver_start(
    tls: ssl.SSLContext | None = None,
) -> tuple[Receiver, http.server.ThreadingHTTPServer]:
    """A receiver answering plain HTTP, or HTTPS with the certificate of `tls`."""
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(Received(headers=dict(self.headers.items()), body=body))
            answer = receiver.answer()
            if isinstance(answer, tuple):
                time.sleep(answer[1])
                answer = 200
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
