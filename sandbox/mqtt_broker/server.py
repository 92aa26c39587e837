"""Running the broker: an async context manager, and a thread for sync callers.

    async with EmbeddedBroker() as broker:      # port 0: a free port
        ... connect clients to 127.0.0.1:broker.port ...

    with BrokerThread() as broker:              # its own event loop and thread
        ... broker.port ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from posgw.sandbox.mqtt_broker.broker import BrokerConfig, BrokerCore
from posgw.sandbox.mqtt_broker.connection import ClientConnection

SHUTDOWN_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 config: BrokerConfig | None = None) -> None:
        self.host = host
        self.port = port
        self.config = config or BrokerConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[ClientConnection] = set()
        self._all_closed = asyncio.Event()
        self._core: BrokerCore | None = None

    @property
    def core(self) -> BrokerCore:
        if self._core is None:
            raise RuntimeError("the broker is not running")
        return self._core

    async def __aenter__(self) -> EmbeddedBroker:
        loop = asyncio.get_running_loop()
        self._core = BrokerCore(loop, self.config)
        self._server = await loop.create_server(self._new_connection, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._connections:  # connection_lost runs on a later loop iteration
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await self._all_closed.wait()
        await self._server.wait_closed()
        self.core.close()
        self._server = None

    def _new_connection(self) -> ClientConnection:
        connection = ClientConnection(self.core, asyncio.get_running_loop(), self._closed)
        self._connections.add(connection)
        self._all_closed.clear()
        return connection

    def _closed(self, connection: ClientConnection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._all_closed.set()


class BrokerThread:
    """An EmbeddedBroker on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 config: BrokerConfig | None = None) -> None:
        self.host = host
        self.port = port
        self._config = config
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        # daemon: a test session that forgets stop() still exits
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)

    def __enter__(self) -> BrokerThread:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the embedded MQTT broker did not start")
        if self._error is not None:
            raise RuntimeError(f"the embedded MQTT broker failed: {self._error}") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(SHUTDOWN_TIMEOUT_S * 2)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with EmbeddedBroker(self.host, self.port, self._config) as broker:
                self.port = broker.port
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # reported to the starting thread by start()
            self._error = exc
        finally:
            self._ready.set()


def run_in_thread(host: str = "127.0.0.1", port: int = 0,
                  config: BrokerConfig | None = None) -> BrokerThread:
    """A started BrokerThread; call `stop()` (or use it in `with`) when done."""
    broker = BrokerThread(host, port, config)
    broker.start()
    return broker
