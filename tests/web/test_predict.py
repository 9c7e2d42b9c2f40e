import io
import math

import pytest

from conftest import estimates
from housing_api import create_app


def assert_error(response, status):
    """The common error shape: code, status, message and request id."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["code"] == status
    assert body["status"]
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_predict_one_home(client, home):
    response = client.post("/v1/predict", json=home)
    body = response.get_json()
    assert response.status_code == 200
    assert body["currency"] == "USD"
    assert body["model"]["name"] == "reference-knn"
    assert body["model"]["version"] == client.get("/v1/model").get_json()["version"]
    assert body["prediction"] > 0 and math.isfinite(body["prediction"])
    assert body["interval"]["lower"] < body["prediction"] < body["interval"]["upper"]
    assert body["interval"]["level"] == 0.8
    assert body["warnings"] == []
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_request_id_is_taken_from_the_client(client, home):
    response = client.post("/v1/predict", json=home,
                           headers={"X-Request-ID": "agent-42.abc"})
    assert response.headers["X-Request-ID"] == "agent-42.abc"
    assert response.get_json()["request_id"] == "agent-42.abc"


def test_unsafe_request_id_is_replaced(client, home):
    unsafe = "<script>" + "x" * 200
    response = client.post("/v1/predict", json=home,
                           headers={"X-Request-ID": unsafe})
    assert len(response.headers["X-Request-ID"]) == 32


def test_zipcode_may_be_an_integer(client, home):
    as_string = client.post("/v1/predict", json=home).get_json()
    as_int = client.post("/v1/predict", json={**home, "zipcode": 98118}).get_json()
    assert as_int["prediction"] == as_string["prediction"]


def test_values_outside_training_range_warn(client, home):
    big = {**home, "sqft_living": 20000, "sqft_above": 20000, "sqft_basement": 0}
    body = client.post("/v1/predict", json=big).get_json()
    assert any(w.startswith("sqft_living=20000 is above the largest")
               for w in body["warnings"])


@pytest.mark.parametrize("field, value, reason", [
    ("bedrooms", -1, "greater than or equal to 0"),
    ("bedrooms", 2.5, "Not a valid integer"),
    ("bedrooms", "3", "Not a valid integer"),
    ("bathrooms", "two", "Not a valid number"),
    ("bathrooms", True, "Not a valid number"),
    ("sqft_living", 0, "greater than or equal to 1"),
    ("sqft_lot", -5, "greater than or equal to 1"),
    ("floors", 0, "greater than or equal to 1"),
    ("waterfront", 2, "less than or equal to 1"),
    ("view", 5, "less than or equal to 4"),
    ("condition", 0, "greater than or equal to 1"),
    ("condition", 6, "less than or equal to 5"),
    ("grade", 14, "less than or equal to 13"),
    ("grade", None, "may not be null"),
    ("yr_built", 1700, "at least 1800"),
    ("yr_built", 3000, "at most"),
    ("yr_renovated", 1900, "not before yr_built"),
    ("zipcode", "9811", "5-digit"),
    ("zipcode", "98l18", "5-digit"),
    ("zipcode", 981180, "5-digit"),
    ("lat", 91, "less than or equal to 90"),
    ("long", "west", "Not a valid number"),
    ("sqft_living15", 0, "greater than or equal to 1"),
    ("color", "blue", "Unknown field"),
])
def test_invalid_field_is_named_with_its_reason(client, home, field, value, reason):
    response = client.post("/v1/predict", json={**home, field: value})
    body = assert_error(response, 422)
    assert reason in " ".join(body["errors"]["json"][field])


@pytest.mark.parametrize("field", ["bedrooms", "zipcode", "lat", "sqft_lot15"])
def test_missing_field_is_named(client, home, field):
    del home[field]
    body = assert_error(client.post("/v1/predict", json=home), 422)
    assert body["errors"]["json"][field] == ["Missing data for required field."]


def test_areas_must_add_up(client, home):
    response = client.post("/v1/predict", json={**home, "sqft_basement": 100})
    body = assert_error(response, 422)
    assert "sqft_above + sqft_basement" in body["errors"]["json"]["sqft_living"][0]


def test_unknown_zipcode_points_to_the_list(client, home):
    body = assert_error(client.post("/v1/predict", json={**home, "zipcode": "10001"}),
                        422)
    message = body["errors"]["json"]["zipcode"][0]
    assert "10001" in message and "/v1/zipcodes" in message


@pytest.mark.parametrize("data, content_type, status", [
    ('{"bedrooms": 4,', "application/json", 400),
    ("not json", "application/json", 400),
    ('{"bedrooms": 4}', "text/plain", 415),
    ("bedrooms=4", "application/x-www-form-urlencoded", 415),
    ('{"bedrooms": 4}', None, 415),
    ("[1, 2]", "application/json", 422),
    ("null", "application/json", 422),
    ('{"bedrooms": NaN}', "application/json", 422),
])
def test_malformed_requests(client, data, content_type, status):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(client.post("/v1/predict", data=data, headers=headers), status)


def test_body_over_the_limit_is_413(model_dir, home):
    app = create_app({"TESTING": True, "MODEL_DIR": model_dir,
                      "MAX_CONTENT_LENGTH": 1000})
    client = app.test_client()
    assert client.post("/v1/predict", json=home).status_code == 200
    padded = {"instances": [home] * 20}
    assert_error(client.post("/v1/predict/batch", json=padded), 413)


def test_minimal_takes_only_what_the_model_uses(client, home):
    minimal = {k: home[k] for k in ("bedrooms", "bathrooms", "sqft_living",
                                    "sqft_lot", "floors", "sqft_above",
                                    "sqft_basement", "zipcode")}
    full = client.post("/v1/predict", json=home).get_json()
    response = client.post("/v1/predict/minimal", json=minimal)
    assert response.status_code == 200
    assert response.get_json()["prediction"] == full["prediction"]


def test_minimal_rejects_fields_the_model_does_not_use(client, home):
    body = assert_error(client.post("/v1/predict/minimal", json=home), 422)
    assert set(body["errors"]["json"]) == {
        "waterfront", "view", "condition", "grade", "yr_built", "yr_renovated",
        "lat", "long", "sqft_living15", "sqft_lot15"}


def test_minimal_names_missing_fields(client):
    body = assert_error(client.post("/v1/predict/minimal",
                                    json={"zipcode": "98118"}), 422)
    assert body["errors"]["json"]["bedrooms"] == ["Missing data for required field."]
    assert "zipcode" not in body["errors"]["json"]


def test_batch_equals_singles(client, homes):
    response = client.post("/v1/predict/batch", json={"instances": homes})
    body = response.get_json()
    assert response.status_code == 200
    assert body["count"] == 100 and len(body["predictions"]) == 100
    for i in (0, 37, 99):
        single = client.post("/v1/predict", json=homes[i]).get_json()
        assert body["predictions"][i]["prediction"] == single["prediction"]
        assert body["predictions"][i]["interval"] == single["interval"]


def test_batch_rejects_the_whole_batch_naming_rows(client, homes):
    bad = [dict(h) for h in homes[:5]]
    bad[1]["grade"] = 99
    bad[3]["zipcode"] = "123"
    body = assert_error(client.post("/v1/predict/batch", json={"instances": bad}),
                        422)
    rows = body["errors"]["json"]["instances"]
    assert set(rows) == {"1", "3"}
    assert "grade" in rows["1"] and "zipcode" in rows["3"]


def test_batch_unknown_zipcodes_are_keyed_by_row(client, homes):
    batch = [dict(h) for h in homes[:3]]
    batch[2]["zipcode"] = "99999"
    body = assert_error(client.post("/v1/predict/batch", json={"instances": batch}),
                        422)
    assert list(body["errors"]["json"]["instances"]) == ["2"]


@pytest.mark.parametrize("body", [{}, {"instances": []}, {"instances": "x"},
                                  {"instances": [], "extra": 1}])
def test_batch_shape_errors(client, body):
    assert_error(client.post("/v1/predict/batch", json=body), 422)


def test_batch_limit_is_configurable(model_dir, homes):
    app = create_app({"TESTING": True, "MODEL_DIR": model_dir, "MAX_BATCH_ROWS": 10})
    client = app.test_client()
    assert client.post("/v1/predict/batch",
                       json={"instances": homes[:10]}).status_code == 200
    body = assert_error(client.post("/v1/predict/batch",
                                    json={"instances": homes[:11]}), 422)
    assert "At most 10" in body["message"]


def csv_text(homes):
    header = list(homes[0])
    lines = [",".join(header)] + [",".join(str(h[c]) for c in header) for h in homes]
    return "\n".join(lines) + "\n"


def test_batch_csv_body_equals_json(client, homes):
    from_json = client.post("/v1/predict/batch", json={"instances": homes}).get_json()
    response = client.post("/v1/predict/batch", data=csv_text(homes),
                           content_type="text/csv")
    assert response.status_code == 200
    assert estimates(response.get_json()["predictions"]) == estimates(
        from_json["predictions"])


def test_batch_csv_file_upload(client, homes):
    with open("data/future_unseen_examples.csv", "rb") as f:
        response = client.post("/v1/predict/batch", data={"file": (f, "homes.csv")},
                               content_type="multipart/form-data")
    assert response.status_code == 200
    assert response.get_json()["count"] == 100


def test_batch_csv_columns_may_be_reordered(client, homes):
    reordered = [dict(reversed(list(h.items()))) for h in homes[:3]]
    response = client.post("/v1/predict/batch", data=csv_text(reordered),
                           content_type="text/csv")
    assert response.status_code == 200


@pytest.mark.parametrize("text, status, key", [
    ("", 422, "header"),
    ("bedrooms,bathrooms\n", 422, "sqft_living"),
    (None, 422, "rows"),
    ("EXTRA", 422, "color"),
    ("BADCELL", 422, "0"),
    ("SHORTROW", 422, "0"),
])
def test_batch_csv_errors(client, homes, text, status, key):
    full = csv_text(homes[:2])
    header = full.splitlines()[0]
    extra = full.replace("\n", ",x\n").replace(header + ",x", header + ",color")
    text = {
        None: header + "\n",
        "EXTRA": extra,
        "BADCELL": full.replace(full.splitlines()[1],
                                "four" + full.splitlines()[1][1:]),
        "SHORTROW": header + "\n1,2,3\n",
    }.get(text, text)
    body = assert_error(client.post("/v1/predict/batch", data=text,
                                    content_type="text/csv"), status)
    assert key in body["errors"]["csv"]


def test_batch_csv_must_be_utf8(client):
    response = client.post("/v1/predict/batch", data=b"\xff\xfe\x00bedrooms",
                           content_type="text/csv")
    assert_error(response, 400)


def test_batch_multipart_without_file(client):
    response = client.post("/v1/predict/batch", data={"other": "x"},
                           content_type="multipart/form-data")
    assert_error(response, 422)


def test_features_describe_both_contracts(client):
    body = client.get("/v1/features").get_json()
    names = [f["name"] for f in body["full"]]
    assert names[:3] == ["bedrooms", "bathrooms", "sqft_living"]
    assert len(body["full"]) == 18
    assert {f["name"] for f in body["minimal"]} == {
        "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors",
        "sqft_above", "sqft_basement", "zipcode"}
    grade = next(f for f in body["full"] if f["name"] == "grade")
    assert (grade["type"], grade["minimum"], grade["maximum"]) == ("integer", 1, 13)
    assert len(body["model_features"]) == 33


def test_model_shows_metadata_and_metrics(client):
    body = client.get("/v1/model").get_json()
    assert body["name"] == "reference-knn"
    assert body["metrics"]["holdout"]["r2"] == pytest.approx(0.728, abs=0.001)


def test_zipcodes_lists_the_known_ones(client):
    body = client.get("/v1/zipcodes").get_json()
    assert body["count"] == 70 == len(body["zipcodes"])
    assert "98118" in body["zipcodes"]
    assert body["zipcodes"] == sorted(body["zipcodes"])


def test_health(client):
    assert client.get("/health/live").get_json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.get_json()["model"]["name"] == "reference-knn"


@pytest.mark.parametrize("method, path", [
    ("get", "/health/ready"), ("post", "/v1/predict"), ("get", "/v1/model"),
    ("get", "/v1/zipcodes"), ("get", "/v1/features"),
])
def test_without_a_model_the_service_is_live_not_ready(tmp_path, home, method, path):
    client = create_app({"TESTING": True, "MODEL_DIR": tmp_path}).test_client()
    assert client.get("/health/live").status_code == 200
    assert_error(getattr(client, method)(path, json=home), 503)


def test_unknown_path_and_method(client):
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.get("/v1/predict"), 405)


def test_unexpected_failure_is_a_500_without_a_traceback(
    app, client, home, monkeypatch
):
    predictor = app.extensions["housing"].predictor

    def explode(columns):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(predictor, "predict", explode)
    app.config["TESTING"] = False  # let Flask turn the exception into a 500
    response = client.post("/v1/predict", json=home)
    body = assert_error(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["request_id"]
    monkeypatch.undo()
    assert client.post("/v1/predict", json=home).status_code == 200


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").get_json()
    assert {"/v1/predict", "/v1/predict/minimal", "/v1/predict/batch",
            "/v1/features", "/v1/model", "/v1/zipcodes", "/health/live",
            "/health/ready"} <= set(spec["paths"])
    batch = spec["paths"]["/v1/predict/batch"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "multipart/form-data"} <= set(batch)
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200


def test_config_comes_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("HOUSING_MAX_BATCH_ROWS", "7")
    monkeypatch.setenv("HOUSING_MODEL_DIR", str(model_dir))
    app = create_app()
    assert app.config["MAX_BATCH_ROWS"] == 7
    assert app.config["MODEL_DIR"] == model_dir
    assert app.extensions["housing"].predictor is not None


def test_csv_reader_is_not_fooled_by_a_bom(client, homes):
    data = io.BytesIO(("\ufeff" + csv_text(homes[:2])).encode())
    response = client.post("/v1/predict/batch", data=data.read(),
                           content_type="text/csv")
    assert response.status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused(client, home, literal):
    text = client.application.json.dumps({**home, "lat": 0.5}).replace(
        "0.5", literal)
    body = assert_error(client.post("/v1/predict", data=text,
                                    content_type="application/json"), 422)
    assert "lat" in body["errors"]["json"]


def test_valid_homes_are_checked_without_building_schemas(client, home,
                                                          monkeypatch):
    from housing_api.web.schemas import HomeSchema

    client.post("/v1/predict", json=home)
    built = []
    original = HomeSchema.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(HomeSchema, "__init__", counting_init)
    for _ in range(3):
        assert client.post("/v1/predict", json=home).status_code == 200
    assert built == []


def test_valid_batches_skip_marshmallow_and_invalid_ones_name_rows(
        client, homes, monkeypatch):
    from marshmallow import Schema

    valid = client.post("/v1/predict/batch", json={"instances": homes[:5]})
    real_load = Schema.load
    calls = []

    def counting_load(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Schema, "load", counting_load)
    csv_text = ",".join(homes[0]) + "\n" + "\n".join(
        ",".join(str(h[c]) for c in homes[0]) for h in homes[:5])
    again = client.post("/v1/predict/batch", json={"instances": homes[:5]})
    as_csv = client.post("/v1/predict/batch", data=csv_text,
                         content_type="text/csv")
    assert calls == []
    expected = estimates(valid.json["predictions"])
    assert estimates(again.json["predictions"]) == expected
    assert estimates(as_csv.json["predictions"]) == expected

    bad = client.post("/v1/predict/batch",
                      json={"instances": [homes[0], {**homes[1], "grade": 99}]})
    assert bad.status_code == 422
    assert "grade" in bad.json["errors"]["json"]["instances"]["1"]
    assert calls
