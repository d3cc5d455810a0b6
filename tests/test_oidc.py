"""OIDC sign-in against a minimal OpenID provider the test runs on loopback (discovery, JWKS, authorize,
token), as ID-porten, HelseID or Entra ID would answer: signed ID tokens checked by Authlib."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from engine import db
from engine.runtime import Runtime
from web import create_app


class Provider:
    """Just enough of an OpenID provider: one client, codes kept in memory, RS256 ID tokens."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"}, private=True)
        self.codes: dict[str, dict] = {}
        self.email = "ada@horten.example.no"
        self.email_verified: bool | None = None  # left out, as many providers do
        self.audience = "samflyt"
        app = Flask("provider")
        app.add_url_rule("/.well-known/openid-configuration", view_func=self.discovery)
        app.add_url_rule("/jwks", view_func=self.jwks)
        app.add_url_rule("/authorize", view_func=self.authorize)
        app.add_url_rule("/token", view_func=self.token, methods=["POST"])
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def discovery(self):
        return jsonify(issuer=self.issuer, authorization_endpoint=f"{self.issuer}/authorize",
                       token_endpoint=f"{self.issuer}/token", jwks_uri=f"{self.issuer}/jwks",
                       response_types_supported=["code"], subject_types_supported=["public"],
                       id_token_signing_alg_values_supported=["RS256"])

    def jwks(self):
        return jsonify(keys=[self.key.as_dict(private=False)])

    def authorize(self):
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": request.args.get("nonce"), "client_id": request.args["client_id"]}
        return redirect(f"{request.args['redirect_uri']}?{urlencode({'code': code, 'state': request.args['state']})}")

    def token(self):
        grant = self.codes.pop(request.form.get("code", ""), None)
        if grant is None or request.authorization is None or request.authorization.password != "hemmelig":
            return jsonify(error="invalid_grant"), 400
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "12345678901", "aud": self.audience, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], "email": self.email}
        if self.email_verified is not None:
            claims["email_verified"] = self.email_verified
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        return jsonify(access_token=secrets.token_urlsafe(16), token_type="Bearer", expires_in=300, id_token=id_token)


@pytest.fixture
def provider():
    p = Provider()
    yield p
    p.http.shutdown()


@pytest.fixture
def app(tmp_path, provider):
    url = f"sqlite:///{tmp_path / 'oidc.db'}"
    db.migrate(db.make_engine(url))
    rt = Runtime(url)
    rt.add_user("ada", roles=["applicant"], organisations=["Horten kommune"], email="ada@horten.example.no")
    return create_app({"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": url, "WTF_CSRF_ENABLED": False,
                       "OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": "samflyt", "OIDC_CLIENT_SECRET": "hemmelig",
                       "OIDC_NAME": "HelseID"})


def _round_trip(client):
    start = client.get("/sign-in/oidc?next=/tasks?view=available")
    assert start.status_code == 302
    at_provider = requests.get(start.location, allow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/sign-in/oidc/callback" and "code" in parse_qs(back.query)
    return client.get(f"{back.path}?{back.query}")


def test_sign_in_with_the_identity_provider(app):
    client = app.test_client()
    assert "Logg inn med HelseID" in client.get("/sign-in").get_data(as_text=True)
    done = _round_trip(client)
    assert done.status_code == 302 and done.location == "/tasks?view=available"
    assert client.get("/tasks").status_code == 200


def test_an_identity_without_an_account_is_refused(app, provider):
    provider.email = "ukjent@example.no"
    client = app.test_client()
    refused = _round_trip(client)
    assert refused.status_code == 403 and "ukjent@example.no" in refused.get_data(as_text=True)
    assert client.get("/tasks").status_code == 302


def test_an_address_the_provider_has_not_verified_opens_no_account(app, provider):
    provider.email_verified = False
    client = app.test_client()
    refused = _round_trip(client)
    assert refused.status_code == 403 and "HelseID" in refused.get_data(as_text=True)
    assert client.get("/tasks").status_code == 302
    provider.email_verified = True
    assert _round_trip(client).status_code == 302 and client.get("/tasks").status_code == 200


def test_a_token_for_another_client_is_refused(app, provider):
    provider.audience = "some-other-service"
    client = app.test_client()
    refused = _round_trip(client)
    assert refused.status_code == 401 and "HelseID" in refused.get_data(as_text=True)
    assert client.get("/tasks").status_code == 302


def test_without_configuration_there_is_no_oidc(tmp_path):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    db.migrate(db.make_engine(url))
    plain = create_app({"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": url})
    assert plain.test_client().get("/sign-in/oidc").status_code == 404
