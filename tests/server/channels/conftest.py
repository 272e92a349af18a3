"""Channel tests talk to real peers on 127.0.0.1; none of them may block the event loop."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import trustme
from blockbuster import blockbuster_ctx

from tests.server.channels.builders import LocalTls


@pytest.fixture(autouse=True)
def no_blocking_in_channels() -> Iterator[None]:
    """Fail a test when code in ``server.channels`` makes a blocking call in the loop
    (file IO, ``time.sleep``, a blocking socket): a channel shares the loop with the
    HTTP service, so one blocking send stalls every request."""
    with blockbuster_ctx("server.channels"):
        yield


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    """The MQTT broker tests publish through: ``TEST_MQTT_URL`` (default Mosquitto on
    ``mqtt://127.0.0.1:1883``). Unreachable: the test skips, or fails when
    ``REQUIRE_SERVICES=1`` (CI), so CI never passes without having published."""
    url = urlparse(os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883"))
    host, port = url.hostname or "127.0.0.1", url.port or 1883
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but no MQTT broker at {host}:{port}: {exc}")
        pytest.skip(f"no MQTT broker at {host}:{port} (set TEST_MQTT_URL)")
    return host, port


@pytest.fixture(scope="session")
def local_tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return LocalTls(certfile, keyfile, server, client)
