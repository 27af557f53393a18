import signal
import threading

from django.core.management.base import BaseCommand

from orders.relay import relay_outbox


class Command(BaseCommand):
    help = "Publish order confirmations from the outbox to Celery as soon as orders commit."

    def add_arguments(self, parser):
        parser.add_argument(
            "--sweep-seconds",
            type=float,
            default=5.0,
            help="Also publish whatever is pending this often, notified or not.",
        )

    def handle(self, *args, sweep_seconds: float, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"outbox relay listening (sweep every {sweep_seconds:g} s)")
        relay_outbox(sweep_seconds=sweep_seconds, stop=stop)
