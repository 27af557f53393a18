"""An email backend that notes, for each message, whether its sender held a transaction
open, and that a test can hold in the middle of sending."""

import threading

from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

# What the backend saw of each message: its subject and the sender's database connection.
sent: list[dict] = []
# Set once a message is being sent; a test that clears `go_on` holds the sender there.
sending = threading.Event()
go_on = threading.Event()


class WatchingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            sent.append(
                {
                    "subject": message.subject,
                    "in_atomic_block": connection.in_atomic_block,
                    "autocommit": connection.get_autocommit(),
                }
            )
        sending.set()
        assert go_on.wait(90), "the test never let the email go"
        return len(email_messages)


def reset() -> None:
    sent.clear()
    sending.clear()
    go_on.set()
