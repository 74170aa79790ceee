"""A gateway's HTTP session reads the environment's proxy and CA settings once per address, and
keeps honouring them: a call through HTTPS_PROXY still goes through it."""

from portal.gateways.transport import new_session


def test_the_environment_is_read_once_per_address_and_kept(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = new_session()
    first = session.merge_environment_settings(
        "https://api.example.com/v1/charges", {}, None, None, None
    )
    assert first["proxies"]["https"] == "http://127.0.0.1:3128"
    assert first["verify"] == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9999")
    again = session.merge_environment_settings(
        "https://api.example.com/v1/refunds", {}, None, None, None
    )
    assert again == first and again["proxies"] is not first["proxies"]  # a copy each time
    # Another session (a new process, a changed gateway) reads it afresh.
    fresh = new_session().merge_environment_settings(
        "https://api.example.com/", {}, None, None, None
    )
    assert fresh["proxies"]["https"] == "http://127.0.0.1:9999"


def test_a_callers_own_proxies_are_merged_as_requests_does(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    session = new_session()
    mine = {"https": "http://127.0.0.1:8888"}
    settings = session.merge_environment_settings(
        "https://api.example.com/", mine, None, None, None
    )
    assert settings["proxies"]["https"] == "http://127.0.0.1:8888"
