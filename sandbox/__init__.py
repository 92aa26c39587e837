"""The whole system on one machine: the demo stack, a private mosquitto, the embedded broker."""
