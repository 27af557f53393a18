from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.seeding import (
    DEFAULT_SEED,
    DEMO_PASSWORD,
    ORDER_WINDOW,
    PRESETS,
    Progress,
    SeedOptionsError,
    SeedRefused,
    demo_seed,
    seed_options_build,
)
from demo.seeding.hours import hours_add
from merchants.services import merchant_open_periods_refresh

_NUMBERS = {3: "three", 4: "four"}


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = (
        "Fill an empty database with a deterministic demo city: merchants with addresses "
        "and delivery zones, categories, products, stock, customers with "
        f"{ORDER_WINDOW.days} days of orders, couriers, and four demo accounts "
        f"(demo-customer, demo-owner, demo-operator, demo-courier; password "
        f"{DEMO_PASSWORD!r}). Everything is written in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        described = "; ".join(
            f"{name}: {p.merchants:,} merchants x {p.products_per_merchant} products, "
            f"{p.radius_km:g} km, {p.orders:,} orders, {p.couriers:,} couriers"
            for name, p in PRESETS.items()
        )
        parser.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            default="demo",
            help=f"Sizes to start from ({described}). Default: demo.",
        )
        parser.add_argument(
            "--merchants", type=int, help="Number of merchants. Default: from the preset."
        )
        parser.add_argument(
            "--products-per-merchant",
            type=int,
            help="Average products per merchant; the total is exactly merchants x this, "
            "spread by shop size.",
        )
        parser.add_argument(
            "--seed",
            type=int,
            help=f"Random seed; equal seeds give equal data. Default: {DEFAULT_SEED}.",
        )
        parser.add_argument(
            "--center", metavar="LAT,LNG", help="Centre of the city. Default: Berlin."
        )
        parser.add_argument(
            "--radius-km", type=float, help="Radius of the city in km. Default: from the preset."
        )
        parser.add_argument(
            "--orders",
            type=int,
            help=f"Number of orders, spread over the {ORDER_WINDOW.days} days before "
            "--orders-until. Default: from the preset.",
        )
        parser.add_argument(
            "--orders-until",
            metavar="DATETIME",
            help="The moment the order history ends, as an ISO 8601 date or date and time "
            "(UTC unless it says otherwise). Default: now. Equal seeds and equal values give "
            "equal orders.",
        )
        parser.add_argument(
            "--couriers",
            type=int,
            help="Number of couriers, the demo courier among them (0: none, and no demo "
            "courier). Default: from the preset.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing, and say so, when merchants already exist.",
        )
        parser.add_argument(
            "--add-hours",
            action="store_true",
            help="Only add opening hours, closures and slot plans to a city seeded before "
            "they existed (nothing when any hours exist).",
        )

    def handle(self, *args, **options) -> None:
        try:
            seed_options = seed_options_build(
                preset=options["preset"],
                merchants=options["merchants"],
                products_per_merchant=options["products_per_merchant"],
                seed=options["seed"],
                center=options["center"],
                radius_km=options["radius_km"],
                orders=options["orders"],
                orders_until=options["orders_until"],
                couriers=options["couriers"],
            )
        except SeedOptionsError as exc:
            raise CommandError(str(exc)) from exc

        def write_progress(text: str) -> None:
            # Django styles stderr as errors (red) on a terminal; progress is no error.
            self.stderr.write(text, style_func=_plain, ending="")
            self.stderr.flush()

        progress = Progress(
            write=write_progress if options["verbosity"] >= 1 else None,
            interactive=self.stderr.isatty(),
        )
        if options["add_hours"]:
            added = hours_add(options=seed_options, progress=progress)
            self.stdout.write("Hours added." if added else "Hours exist; nothing added.")
            # A city seeded days ago, with no beat running for it: its merchants' kept open
            # periods are brought up to date, as the hourly task would.
            refreshed = merchant_open_periods_refresh()
            self.stdout.write(f"Open periods refreshed for {refreshed} merchants.")
            return
        try:
            result = demo_seed(
                options=seed_options, if_empty=options["if_empty"], progress=progress
            )
        except SeedRefused as exc:
            raise CommandError(str(exc)) from exc

        if result.skipped:
            self.stdout.write("Merchants already exist; nothing seeded (--if-empty).")
            return
        counts = ", ".join(f"{count:,} {name}" for name, count in result.counts.items())
        self.stdout.write(
            self.style.SUCCESS(f"Seeded in {result.seconds:.1f}s (seed {seed_options.seed}): ")
            + counts
            + "."
        )
        if result.counts.get("orders"):
            until = f"{seed_options.orders_until:%Y-%m-%dT%H:%M:%SZ}"
            self.stdout.write(
                f"Orders span the {ORDER_WINDOW.days} days up to {until} "
                f"(--orders-until {until} repeats them)."
            )
        self.stdout.write(
            f"\nDemo accounts, password {DEMO_PASSWORD!r} for all "
            f"{_NUMBERS.get(len(result.demo_accounts), len(result.demo_accounts))}:"
        )
        notes = {
            "owner": f"owns merchant {result.first_merchant_id}",
            "operator": "staff and superuser, can use /admin/",
        }
        for account in result.demo_accounts:
            note = account.note or notes.get(account.role, "")
            self.stdout.write(
                f"  {account.role:<9} {account.username:<14} token {account.token}  {note}".rstrip()
            )
        self.stdout.write('API calls take the header "Authorization: Token <token>".')
