"""The pages and the API docs load only what the service itself serves."""
import re
from html.parser import HTMLParser

import pytest

from housing_api import config

#: Every HTML page the service serves.
PAGES = ("/", "/?inputs=minimal", "/batch", "/models", "/key", "/docs", "/redoc")


class References(HTMLParser):
    """Every URL an HTML page makes a browser load or follow."""

    ATTRIBUTES = {"src", "href", "action", "srcset", "data", "poster",
                  "formaction", "spec-url"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs
                      if name in self.ATTRIBUTES and value]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # URLs in inline scripts and styles too: url(...), "https://..."
    return parser.urls + re.findall(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}""", html)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_references_another_origin(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.mimetype == "text/html"
    urls = references(response.get_data(as_text=True))
    assert urls, "the page loads nothing at all?"
    assert [u for u in urls if re.match(r"^(https?:)?//", u)] == []


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_a_page_loads_is_served(client, page):
    html = client.get(page).get_data(as_text=True)
    assets = [u for u in references(html) if u.startswith("/")
              and u.endswith((".js", ".css"))]
    assert assets
    for url in assets:
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert len(response.data) > 200, url


def test_the_viewers_are_the_packaged_builds(client):
    with client.get(config.OPENAPI_SWAGGER_UI_URL + "swagger-ui-bundle.js") as js:
        assert b"SwaggerUIBundle" in js.data
    with client.get(config.OPENAPI_REDOC_URL) as js:
        assert b"Redoc" in js.data
    assert client.get("/docs/assets/../setup.cfg").status_code == 404


def test_the_references_finder_sees_a_cdn():
    html = ('<link href="https://cdn.jsdelivr.net/npm/x.css"><script src='
            '"//unpkg.com/y.js"></script>')
    assert len([u for u in references(html) if u.startswith(("http", "//"))]) == 4
