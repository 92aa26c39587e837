"""The broker as deploy/mosquitto/ ships it, run on a free loopback port.

The shipped posgw.conf is used as it is, with only what a test must change:
its /etc and /var paths point into the test's folder, its TLS listener
listens on 127.0.0.1:`port`, and the broker stays our user (PrivateBroker's
convention: it must read the test's files). The password file and the ACL
are written by center/broker_access.py, the code `posgw center enroll` runs,
for the center and two gateways of two branches.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from posgw.center.broker_access import center_acl, gateway_acl, new_password, password_line
from tests.brokers import private_broker
from tests.security.certs import BrokerPki

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
SHIPPED_CONFIG = DEPLOY / "posgw.conf"
SHIPPED_ACL = DEPLOY / "posgw.acl"
PREFIX = "pos/v1"
CENTER = "posgw-center-1"
#: gateway_id -> its branch
GATEWAYS = {"gw-b001-1": "B001", "gw-b002-1": "B002"}


@dataclass(frozen=True, slots=True)
class DeployedBroker:
    port: int
    ca: Path
    passwords: dict[str, str]  # user name -> password


def adapted_config(port: int, folder: Path, pki: BrokerPki) -> str:
    text = SHIPPED_CONFIG.read_text()
    text = (text.replace("/etc/mosquitto/posgw/ca.crt", str(pki.ca))
            .replace("/etc/mosquitto/posgw/broker.crt", str(pki.server.cert))
            .replace("/etc/mosquitto/posgw/broker.key", str(pki.server.key))
            .replace("/etc/mosquitto/posgw/", f"{folder}/")
            .replace("persistence_location /var/lib/mosquitto/",
                     f"persistence_location {folder}/"))
    assert "\nlistener 8883\n" in text, "the shipped config should listen on 8883"
    text = text.replace("\nlistener 8883\n", f"\nlistener {port} 127.0.0.1\n")
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert not [line for line in settings if "/etc/" in line or "/var/" in line], \
        "a deploy path left unadapted"
    return f"{text}\nuser {getpass.getuser()}\n"


@contextmanager
def deployed_broker(folder: Path, pki: BrokerPki, passwords: dict[str, str] | None = None
                    ) -> Iterator[DeployedBroker]:
    """Runs the shipped configuration for the block (skipped without mosquitto).

    Without `passwords`, `folder`'s passwd and acl files are written here for
    the center and GATEWAYS; with them, the files are already there (made by
    `posgw center enroll`) and these are the passwords it printed.
    """
    if passwords is None:
        passwords = {user: new_password() for user in (CENTER, *GATEWAYS)}
        (folder / "passwd").write_text("".join(
            password_line(user, password) + "\n" for user, password in passwords.items()))
        (folder / "acl").write_text("\n".join(
            [center_acl(PREFIX, CENTER),
             *(gateway_acl(PREFIX, branch, gateway) for gateway, branch in GATEWAYS.items())]))
    with private_broker(folder, config=lambda port: adapted_config(port, folder, pki)) as broker:
        yield DeployedBroker(broker.port, pki.ca, passwords)
