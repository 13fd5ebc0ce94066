"""A network cable between the demo's PC and its cloud: a TCP forwarder that can be unplugged.

Unplugged, it drops every open connection and refuses new ones, as a pulled cable or a dead router
would look to the PC; plugged again, it forwards as before, at full speed or at a given rate (a slow line).
"""

from __future__ import annotations

import socket
import threading
import time

_BLOCK = 4096  # bytes read at once on a slow line: the window reopens often, no timeout fires


class Cable:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", listen_port: int = 0):
        self.target = (target_host, target_port)
        self._server = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
        self.port = self._server.getsockname()[1]
        self.plugged = True
        self.rate: float | None = None  # bytes per second each way on each connection; None: full speed
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="cable").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self.plugged:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                rate = self.rate
                data = src.recv(_BLOCK if rate else 65536)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def unplug(self) -> None:
        self.plugged = False
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            self._drop(s)

    def plug(self, rate: float | None = None) -> None:
        """Plugged in again; with a rate (bytes per second), as a slow line until the next plug()."""
        self.rate = rate
        self.plugged = True

    def close(self) -> None:
        self._closed = True
        self.unplug()
        self._server.close()
