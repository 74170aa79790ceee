"""Settle's sandbox gateway server: Settle's own API at /, each provider's emulation at /<name>."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from functools import cache

import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal.sandbox import providers
from portal.sandbox.emulator import Emulator, Faults
from portal.sandbox.ledger import Ledger
from portal.sandbox.settle_api import SettleSandbox
from portal.sandbox.webhooks import WebhookSender

ENDPOINTS_PATH = "/_sandbox/webhook_endpoints"


@cache
def emulators() -> dict[str, type[Emulator]]:
    """Every emulation: Settle's own, and each module in portal/sandbox/providers/ (its EMULATOR)."""
    found: dict[str, type[Emulator]] = {SettleSandbox.provider: SettleSandbox}
    for module in pkgutil.iter_modules(providers.__path__):
        cls = importlib.import_module(f"{providers.__name__}.{module.name}").EMULATOR
        found[cls.provider] = cls
    return found


def mount_path(name: str) -> str:
    return "" if name == SettleSandbox.provider else f"/{name}"


def register_webhook(sandbox_url: str, provider: str, url: str) -> None:
    """Tell a sandbox server (this process's or another's) where a provider's events go."""
    answer = requests.post(
        sandbox_url + ENDPOINTS_PATH, data={"provider": provider, "url": url}, timeout=10
    )
    answer.raise_for_status()


def sandbox_credentials(name: str) -> dict[str, str]:
    """The test credentials the sandbox accepts for a plugin."""
    return dict(emulators()[name].credentials)


class SandboxServer:
    """The sandbox on 127.0.0.1, in a thread of this process (port 0 picks a free port)."""

    def __init__(self, host="127.0.0.1", port=0, *, ledger_path=":memory:", settle_after=120.0,
                 hang_seconds=30.0, latency=0.0, webhook_delay=1.0, webhook_twice=0.0,
                 webhook_disorder=0.0, rate_limit=None):  # fmt: skip
        self.ledger = Ledger(ledger_path, settle_after=settle_after)
        self.faults = Faults(hang_seconds, latency, rate_limit)
        self.webhooks = WebhookSender(webhook_delay, webhook_twice, webhook_disorder)
        apps = {
            name: cls(self.ledger, self.faults, self.webhooks) for name, cls in emulators().items()
        }
        root = apps.pop(SettleSandbox.provider)
        mounts = {mount_path(n): a for n, a in apps.items()}
        mounts[ENDPOINTS_PATH] = self._endpoints_app
        self.app = DispatcherMiddleware(root, mounts)
        self._server = make_server(host, port, self.app, threaded=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, name: str) -> str:
        """The base URL a plugin of this name uses to reach its emulation here."""
        return self.url + mount_path(name)

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="settle-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def _endpoints_app(self, environ, start_response):
        """POST /_sandbox/webhook_endpoints provider=&url=: where a provider's events go (what a
        merchant sets in the provider's dashboard)."""
        request = Request(environ)
        provider, url = request.form.get("provider", ""), request.form.get("url", "")
        if request.method != "POST" or provider not in emulators() or not url.startswith("http"):
            response = Response("give provider= (an emulation) and url= (http...)", status=400)
        else:
            self.webhooks.register(provider, url)
            response = Response(f"{provider} events go to {url}", status=201)
        return response(environ, start_response)

    def stop(self) -> None:
        self.webhooks.stop()
        self.faults.stopping.set()
        self._server.shutdown()
        self._server.server_close()
