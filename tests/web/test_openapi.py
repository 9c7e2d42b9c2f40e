"""The OpenAPI document is the contract: it changes only on purpose.

``openapi.json`` beside this file is the document as served. After a
deliberate change to the API, write it again from a running server
(``curl -s localhost:8000/openapi.json > tests/web/openapi.json``) and let
the diff show the change in review.
"""
import json
from pathlib import Path

from housing_api import create_app
from housing_api.web.schemas.fields import max_year

SNAPSHOT = Path(__file__).with_name("openapi.json")


def expected() -> bytes:
    """The snapshot, with this year's bound on the two year fields.

    ``yr_built`` and ``yr_renovated`` go up to next year, so the document
    moves on every New Year's Day; nothing else may differ.
    """
    text = SNAPSHOT.read_text()
    year = json.loads(text)["components"]["schemas"]["Home"]["properties"][
        "yr_built"]["maximum"]
    old, new = f'"maximum": {year}', f'"maximum": {max_year()}'
    assert text.count(old) == 4  # yr_built and yr_renovated, in Home and MinimalHome
    return text.replace(old, new).encode()


def test_the_served_document_is_the_committed_one(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.data == expected()


def test_the_document_does_not_depend_on_the_model(tmp_path):
    empty = create_app({"TESTING": True, "MODEL_DIR": tmp_path / "model"})
    assert empty.test_client().get("/openapi.json").data == expected()
