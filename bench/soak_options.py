"""bench/soak.py's command line: the options, their defaults, and the command
as it would be typed back (for the reports written into the READMEs).

The defaults give a 10-minute run every fault at least once, staggered so
they rarely coincide (at 10 min: broker SIGKILL at 3, 6 and 9 min, SIGTERM
at 5, the gateway killed at 4 and 8, a center killed every 2.5 min and,
with --postgres, PostgreSQL crashed at 3:20 and 6:40). An interval of 0
turns its fault off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.soak_stack import DEFAULT_SHARE_GROUP

DEFAULTS: dict[str, float] = {
    "minutes": 10.0, "rate": 200.0, "broker_restart_every": 300.0, "broker_kill_every": 180.0,
    "broker_outage": 5.0, "kill_every": 240.0, "center_kill_every": 150.0, "centers": 1,
    "postgres_restart_every": 200.0, "postgres_outage": 3.0, "tcp_terminals": 20}


def command_line(args: argparse.Namespace) -> str:
    """The command as it would be typed: --minutes always, other options when not default."""
    parts = ["python bench/soak.py", f"--minutes {args.minutes:g}"]
    for name, default in DEFAULTS.items():
        value = getattr(args, name)
        if name != "minutes" and value != default:
            parts.append(f"--{name.replace('_', '-')} {value:g}")
    if args.postgres:
        parts.append("--postgres")
    if args.center_share_group and not (args.centers > 1
                                        and args.center_share_group == DEFAULT_SHARE_GROUP):
        parts.append(f"--center-share-group {args.center_share_group}")
    return " ".join(parts)


def _seconds(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    flag = f"--{name.replace('_', '-')}"
    parser.add_argument(flag, type=float, default=DEFAULTS[name], metavar="SECONDS",
                        help=f"{what} (default {DEFAULTS[name]:g}; 0: never)")


def _fault_options(parser: argparse.ArgumentParser) -> None:
    _seconds(parser, "broker_restart_every", "SIGTERM the broker this often")
    _seconds(parser, "broker_kill_every", "SIGKILL the broker this often (nothing saved)")
    parser.add_argument("--broker-outage", type=float, default=DEFAULTS["broker_outage"],
                        metavar="SECONDS", help="how long the broker stays down (default 5)")
    _seconds(parser, "kill_every", "SIGKILL the gateway this often")
    _seconds(parser, "center_kill_every",
             "SIGKILL each center this often, while it stores (staggered over the centers)")
    _seconds(parser, "postgres_restart_every",
             "with --postgres: crash PostgreSQL (pg_ctl stop -m immediate) this often")
    parser.add_argument("--postgres-outage", type=float, default=DEFAULTS["postgres_outage"],
                        metavar="SECONDS", help="how long PostgreSQL stays down (default 3)")


def parse_args(argv: list[str] | None = None, description: str = "") -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=float, default=DEFAULTS["minutes"],
                        help="minutes of traffic (default 10)")
    parser.add_argument("--rate", type=float, default=DEFAULTS["rate"],
                        help="requests per second over all terminals, open loop (default 200)")
    _fault_options(parser)
    parser.add_argument("--tcp-terminals", type=int, default=DEFAULTS["tcp_terminals"],
                        help="IP terminals, besides one serial and one USB (default 20)")
    parser.add_argument("--centers", type=int, default=DEFAULTS["centers"],
                        help="center processes, each its own client id, on one shared "
                             f"subscription (default 1; more imply --center-share-group "
                             f"{DEFAULT_SHARE_GROUP})")
    parser.add_argument("--postgres", action="store_true",
                        help="the centers' database on a private PostgreSQL server (its "
                             "binaries under /usr/lib/postgresql/*/bin) instead of SQLite")
    parser.add_argument("--drain-timeout", type=float, default=900.0, metavar="SECONDS",
                        help="how long the center may take to catch up after the traffic")
    parser.add_argument("--center-share-group", default="", metavar="GROUP",
                        help="the centers' share_group; default \"\" with one center: a plain "
                             "subscription, which mosquitto restores after a restart (a shared "
                             "one it does not: see bench/README.md)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--workdir", type=Path,
                        help="keep databases and logs here (default: a temporary directory, "
                             "removed after a clean run, kept after a failed one)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the report into README.md and bench/README.md (bench:soak)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.tcp_terminals < 0 or args.centers < 1:
        parser.error("--minutes and --rate must be positive, --tcp-terminals not negative, "
                     "--centers at least 1")
    if args.centers > 1 and not args.center_share_group:
        # Plain subscribers would each get, and each try to store, every event.
        args.center_share_group = DEFAULT_SHARE_GROUP
    return args
