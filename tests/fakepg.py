"""A PostgreSQL server that speaks just enough of the wire protocol to refuse a password.

The shared server on 127.0.0.1:5432 trusts every local connection, so it accepts any password
and a "wrong password" cannot be produced there without changing its pg_hba.conf, which other
engineers' tests rely on. This stand-in answers the real client (libpq via psycopg2, through
SQLAlchemy and Optuna) exactly as PostgreSQL does for a bad password: it declines SSL/GSS
encryption, asks for a cleartext password, records what it received, and replies
`FATAL 28P01 password authentication failed for user "<user>"` (PostgreSQL protocol v3,
https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP).
"""

from __future__ import annotations

import socket
import struct
import threading

SSL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877104, 196608


def _read_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client went away")
        buf += chunk
    return buf


class PasswordRefusingServer:
    """Context manager: `with PasswordRefusingServer() as srv: srv.port, srv.passwords`."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.passwords: list[str] = []
        self.users: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "PasswordRefusingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except (ConnectionError, OSError, struct.error):
                    pass

    def _handle(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _read_exact(conn, 8))
            body = _read_exact(conn, length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                conn.sendall(b"N")  # no encryption; the client goes on in plain text
                continue
            if code != PROTOCOL_3:
                return
            parts = body.split(b"\0")
            params = dict(zip(parts[0::2], parts[1::2]))
            user = params.get(b"user", b"").decode()
            self.users.append(user)
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = _read_exact(conn, 1)
        (length,) = struct.unpack("!i", _read_exact(conn, 4))
        payload = _read_exact(conn, length - 4)
        if kind == b"p":
            self.passwords.append(payload.rstrip(b"\0").decode())
        fields = [b"SFATAL", b"VFATAL", b"C28P01", f'Mpassword authentication failed for user "{user}"'.encode()]
        msg = b"".join(f + b"\0" for f in fields) + b"\0"
        conn.sendall(b"E" + struct.pack("!i", len(msg) + 4) + msg)
