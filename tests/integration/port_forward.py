"""A TCP forwarder on a scheme's default port, so a test can call a local service by a URL without a port."""

from __future__ import annotations

import socket
import threading

import pytest

# A loopback address of its own: 127.0.0.1:80 may be someone else's.
ADDRESS = "127.0.0.2"


class PortForward:
    """Forwards ADDRESS:<port> byte for byte to `target` (host, port) while in its `with` block."""

    def __init__(self, port: int, target: tuple[str, int]):
        self.target = target
        try:
            self._listener = socket.create_server((ADDRESS, port))
        except OSError as error:  # needs root for port 80, and the port free
            pytest.skip(f"cannot listen on {ADDRESS}:{port}: {error}")
        self._listener.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> PortForward:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client = self._listener.accept()[0]
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target, timeout=10) as upstream:
            pipes = [threading.Thread(target=self._pipe, args=pair) for pair in ((client, upstream), (upstream, client))]
            for pipe in pipes:
                pipe.start()
            for pipe in pipes:
                pipe.join()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(60)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # The other direction may still be sending: close only this one.
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
