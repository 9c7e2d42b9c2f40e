"""Trust the ``X-Forwarded-*`` headers of exactly ``PROXY_COUNT`` proxies."""
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app) -> None:
    """Wrap the app in ``ProxyFix`` when proxies stand in front of it."""
    hops = int(app.config["PROXY_COUNT"])
    if hops:
        # Trust exactly this many proxies' X-Forwarded-* headers, no more.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,
                                x_host=hops, x_port=hops, x_prefix=hops)
