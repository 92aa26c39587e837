"""The demo's card pool: the named test cards plus many well-funded ones, so
ordinary traffic rarely repeats a card on a terminal (which the risk rules
would rightly freeze)."""

from __future__ import annotations

import random

from posgw.simulator.cards import Card, demo_cards

POOL_SIZE = 5_000
POOL_PREFIX = "489537"  # a test BIN; the issuer is the demo acquirer
POOL_PIN = "1234"
POOL_BALANCE = 10**9


def luhn_complete(partial: str) -> str:
    """`partial` plus its Luhn check digit."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return partial + str((10 - total % 10) % 10)


def card_pool(seed: int, size: int = POOL_SIZE) -> list[Card]:
    rng = random.Random(seed)
    pans = {luhn_complete(POOL_PREFIX + f"{rng.randrange(10**9):09d}") for _ in range(size)}
    return [Card(pan, POOL_PIN, POOL_BALANCE) for pan in sorted(pans)]


def all_cards(pool: list[Card]) -> list[Card]:
    return demo_cards() + pool
