"""The acquirer takes a purchase and never answers: the terminal hears 91,
and once the acquirer is back the queued 0420 reversal advice reaches it and
the card's money is restored there."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.daemon import Gateway
from posgw.gateway.profiles import load_profile
from posgw.gateway.store import Store, UpstreamQueueItem
from posgw.sandbox.ports import free_port
from posgw.simulator import cards as demo
from posgw.simulator.acquirer import AcquirerServer, Fault, FaultKind
from posgw.simulator.acquirer_host import AcquirerHost
from posgw.simulator.cards import demo_cards
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.drivers.helpers import wait_until
from tests.e2e.harness import TCP_PROFILE, gateway_config

UPSTREAM = load_profile("iso87-binary")


def advices(database: str) -> list[UpstreamQueueItem]:
    with Store(database) as store, store.session() as session:
        return list(session.scalars(select(UpstreamQueueItem)))


async def test_timed_out_purchase_is_reversed_upstream_once_the_acquirer_returns(
        tmp_path: Path) -> None:
    cards = demo_cards()
    host = AcquirerHost(UPSTREAM.iso8583, cards)
    balance_before = host.cards.card(demo.VISA_OK).balance
    acquirer_port = free_port()
    config = gateway_config(tmp_path, shared_broker_port(), upstream={
        "mode": "iso8583", "host": f"127.0.0.1:{acquirer_port}", "profile": "iso87-binary",
        "timeout_s": 1})
    gateway, stop = Gateway(config), asyncio.Event()
    acquirer = AcquirerServer(UPSTREAM, host, port=acquirer_port)
    await acquirer.__aenter__()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        acquirer.inject(Fault(FaultKind.DROP_RESPONSE, mti="0200"))
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0])
        async with TerminalSimulator(TCP_PROFILE, transport, "A0000001", "M00000000000001",
                                     cards, response_timeout_s=5.0) as terminal:
            assert gateway.upstream is not None
            await asyncio.wait_for(gateway.upstream.wait_connected(), 10)
            exchange = await terminal.purchase(demo.VISA_OK, 77_00)
        assert exchange.response_code == "91"
        # The acquirer debited the card; it goes away before the advice reaches it.
        assert host.cards.card(demo.VISA_OK).balance == balance_before - 77_00
        await acquirer.__aexit__(None, None, None)
        [queued] = advices(config.database)
        assert queued.mti == "0420" and queued.done_at is None
        acquirer = AcquirerServer(UPSTREAM, host, port=acquirer_port)  # back, same state
        await acquirer.__aenter__()
        await wait_until(lambda: advices(config.database)[0].done_at is not None, 30)
        assert host.cards.card(demo.VISA_OK).balance == balance_before
    finally:
        stop.set()
        await run
        await acquirer.__aexit__(None, None, None)
