"""Loopback HTTP clients for the proxy tests: one request on a fresh connection from a chosen
127.x source address (:func:`call`), and slow and idle clients holding hundreds of connections
(:class:`SlowClients`), with :func:`under_attack` measuring normal requests while they hold on."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

BODY = json.dumps({"input": "a short text"}).encode()


@dataclass
class Answer:
    status: object  # the HTTP status, or the exception's name
    seconds: float
    headers: dict = field(default_factory=dict)
    body: bytes = b""


def call(port: int, method: str = "POST", path: str = "/v1/embeddings", source: str = "127.0.0.1",
         headers: Optional[dict] = None, body: Optional[bytes] = BODY, timeout: float = 10) -> Answer:
    """One request on a fresh connection from `source` (any 127.x address is loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body if method == "POST" else None,
                     headers={"Content-Type": "application/json", "Connection": "close", **(headers or {})})
        response = conn.getresponse()
        payload = response.read()
        return Answer(response.status, time.perf_counter() - started, {k.lower(): v for k, v in response.getheaders()}, payload)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(type(exc).__name__, time.perf_counter() - started)
    finally:
        conn.close()


class SlowClients:
    """Slow and idle clients against 127.0.0.1:`port`, held open by one thread:

    - `slowloris`: a request line, then one header line every 1.5 s (the request never ends);
    - `slow_body`: a POST's headers announcing BODY_BYTES, then 2 bytes of body every 0.5 s;
    - `idle`: connected, silent.

    The thread stops after `seconds` at most, or at :meth:`close`, which closes every socket.
    """

    TICK, LORIS_EVERY, BODY_BYTES = 0.5, 3, 100_000

    def __init__(self, port: int, slowloris: int = 150, slow_body: int = 60, idle: int = 100, seconds: float = 30):
        self.port, self.seconds = port, seconds
        self.counts = {"slowloris": slowloris, "slow_body": slow_body, "idle": idle}
        self.sockets: list[tuple[str, socket.socket]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def __enter__(self) -> "SlowClients":
        opening = {
            "slowloris": b"GET /v1/models HTTP/1.1\r\nHost: attack\r\n",
            "slow_body": (b"POST /v1/embeddings HTTP/1.1\r\nHost: attack\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n{\"input\": \"" % self.BODY_BYTES),
            "idle": b"",
        }
        try:
            for kind, count in self.counts.items():
                for _ in range(count):
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    self.sockets.append((kind, sock))
                    if opening[kind]:
                        sock.sendall(opening[kind])
                    sock.setblocking(False)  # a few bytes never fill the send buffer; held() must not wait
        except BaseException:
            self.close()
            raise
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _drive(self) -> None:
        deadline, tick = time.monotonic() + self.seconds, 0
        while not self.stop.wait(self.TICK) and time.monotonic() < deadline:
            tick += 1
            for kind, sock in self.sockets:
                if kind == "slowloris" and tick % self.LORIS_EVERY == 0:
                    piece = b"X-Slow-%d: %d\r\n" % (tick, tick)
                elif kind == "slow_body":
                    piece = b"ab"
                else:
                    continue
                try:
                    sock.send(piece)
                except OSError:
                    pass  # closed by the server: held() counts it

    def held(self) -> dict[str, int]:
        """Per kind, the connections the server still holds open (no end of stream, no reset, no answer)."""
        held = dict.fromkeys(self.counts, 0)
        for kind, sock in self.sockets:
            try:
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                held[kind] += 1
            except OSError:
                pass
        return held

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for _, sock in self.sockets:
            sock.close()


def under_attack(port: int, requests: int, concurrency: int, timeout: float, source: str) -> tuple[list[Answer], dict, float]:
    """Normal `/v1/embeddings` requests to `port` while SlowClients hold connections to the same
    port: (answers, connections still held when the last answer came, seconds the attack ran)."""
    with SlowClients(port) as attack:
        started = time.monotonic()
        time.sleep(2.0)  # every slow client connected and sending
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda _: call(port, source=source, timeout=timeout), range(requests)))
        return answers, attack.held(), time.monotonic() - started


def summary(answers: list[Answer]) -> str:
    done = sorted(a.seconds for a in answers if a.status == 200)
    text = f"{len(done)}/{len(answers)} answered 200"
    if done:
        text += f", median {statistics.median(done) * 1000:.0f} ms, max {done[-1] * 1000:.0f} ms"
    others = [a.status for a in answers if a.status != 200]
    return text + (f", others: {sorted(set(map(str, others)))} after up to {max(a.seconds for a in answers):.1f} s" if others else "")
