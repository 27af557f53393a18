"""An email backend for the worker-crash test: it marks that sending began, waits, then
writes each message to a file, so another process can count what was really sent."""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend


class SlowFileEmailBackend(EmailBackend):
    def send_messages(self, email_messages):
        marker = Path(self.file_path) / "sending"
        marker.write_text(str(os.getpid()))
        time.sleep(float(os.environ.get("SLOW_EMAIL_SECONDS", "4")))
        return super().send_messages(email_messages)
