"""The suite cannot reach any real gateway: only loopback connections are allowed."""

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
@pytest.mark.parametrize("address", [("192.0.2.1", 443), ("8.8.8.8", 53)])
def test_a_connection_off_the_machine_fails_the_test(address):
    with socket.socket() as sock, pytest.raises(SocketConnectBlockedError):
        sock.connect(address)


def test_a_loopback_connection_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())
