"""An embedded MQTT 5 / 3.1.1 broker for `posgw demo` and the tests.

Used when mosquitto is not installed; see README.md beside this file for
what it supports and what it leaves out.
"""

from posgw.sandbox.mqtt_broker.broker import BrokerConfig, BrokerCore
from posgw.sandbox.mqtt_broker.server import BrokerThread, EmbeddedBroker, run_in_thread

__all__ = ["BrokerConfig", "BrokerCore", "BrokerThread", "EmbeddedBroker", "run_in_thread"]
