"""A real OpenID Connect provider for Tessera's tests: oidc-provider-mock (Flask + Authlib),
with a few additions the tests need and the package lacks.

    run.py --port PORT [--require-pkce] [--token-max-age SECONDS] [--cache-max-age SECONDS]

Prints its issuer (http://127.0.0.1:PORT) once listening; exits when stdin closes or on
SIGTERM. Started and stopped by tests/api/support/oidc.rs.

From the package, unchanged: discovery, /oauth2/authorize (a form POST with `sub` authorizes
without a browser), /oauth2/token, /userinfo, /jwks, PUT /users/<sub> (a user's claims).
Added here, because the package has none of it:

- clients the test names: PUT /test/clients/<client_id> {"client_secret", "redirect_uris"};
  every other client_id is refused (the package would accept any id with any secret);
- PKCE: the package ignores code_challenge; here S256 is checked at the token endpoint
  (plain is refused), and with --require-pkce an authorization without it is refused;
- key rotation: POST /test/rotate-keys {"keep_previous": true} signs from then on with a
  new key (new kid); JWKS lists it, and the old one only when kept;
- a `kid` in the id_token header, and `alg`/`use` on JWKS keys, as real providers send;
- Cache-Control: max-age on discovery and JWKS with --cache-max-age (HTTP cache lifetimes);
- POST /test/id-token {"claims", "key": "current"|"previous"|"stranger", "header"}: an
  id_token with any claims (expired, wrong aud, ...); "stranger" is a key not in the JWKS
  under the current kid, i.e. a forgery.
"""

import argparse
import os
import signal
import sys
import threading
import time

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain HTTP on 127.0.0.1

import warnings  # noqa: E402

warnings.simplefilter("ignore")  # the package's own deprecation warnings, on stderr

import authlib.oauth2.rfc6749 as rfc6749  # noqa: E402
import flask  # noqa: E402
import werkzeug.serving  # noqa: E402
from authlib import jose  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

import oidc_provider_mock._app as mock  # noqa: E402
from oidc_provider_mock._storage import Client, storage  # noqa: E402

ALG = "RS256"
# The authorization request's PKCE parameters, by code (the package's code record has no room).
challenges = {}
# Keys rotated out but still published (keep_previous), newest first.
previous_keys = []
require_pkce = False


def kid_of(key):
    return key.as_dict()["kid"]


class TestClient(Client):
    """A client with a secret that is checked, by HTTP Basic or in the form."""

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")


class S256Challenge(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if require_pkce and not data.get("code_challenge"):
            raise rfc6749.InvalidRequestError("Missing 'code_challenge'")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise rfc6749.InvalidRequestError("Unsupported 'code_challenge_method'")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code):
        return challenges.get(authorization_code.code, (None, None))[0]

    def get_authorization_code_challenge_method(self, authorization_code):
        return challenges.get(authorization_code.code, (None, None))[1]


class Grant(mock.AuthorizationCodeGrant):
    def __init__(self, request, server):
        super().__init__(request, server)
        S256Challenge(required=True)(self)

    def save_authorization_code(self, code, request):
        data = request.payload.data
        challenges[code] = (data.get("code_challenge"), data.get("code_challenge_method"))
        super().save_authorization_code(code, request)


class OpenIDCode(mock.OpenIDCode):
    def get_encode_header(self, client):
        return {"typ": "JWT", "alg": ALG, "kid": kid_of(storage.jwk)}


# The package builds its grant and OpenID extension from these module names at start.
mock.AuthorizationCodeGrant = Grant
mock.OpenIDCode = OpenIDCode


def public_jwk(key):
    return {**key.as_dict(), "alg": ALG, "use": "sig"}


def build_app(token_max_age, cache_max_age):
    from datetime import timedelta

    app = mock.app(
        require_client_registration=True,
        require_nonce=False,
        access_token_max_age=timedelta(seconds=token_max_age),
    )
    issuer = lambda: flask.request.host_url.rstrip("/")  # noqa: E731

    def jwks():
        keys = [storage.jwk, *previous_keys]
        return flask.jsonify({"keys": [public_jwk(key) for key in keys]})

    app.view_functions["oidc-provider-mock.jwks"] = jwks
    discovery = app.view_functions["oidc-provider-mock.openid_config"]

    def openid_config():
        document = discovery().get_json()
        document["code_challenge_methods_supported"] = ["S256"]
        document["token_endpoint_auth_methods_supported"] = [
            "client_secret_basic",
            "client_secret_post",
        ]
        document["claims_supported"] = ["sub", "email", "email_verified", "name"]
        return flask.jsonify(document)

    app.view_functions["oidc-provider-mock.openid_config"] = openid_config

    if cache_max_age is not None:

        @app.after_request
        def cache_lifetime(response):
            if flask.request.path in ("/jwks", "/.well-known/openid-configuration"):
                response.headers["Cache-Control"] = f"public, max-age={cache_max_age}"
            return response

    @app.put("/test/clients/<client_id>")
    def put_client(client_id):
        body = flask.request.get_json(force=True)
        storage.store_client(
            TestClient(
                id=client_id,
                secret=body["client_secret"],
                redirect_uris=list(body["redirect_uris"]),
                allowed_scopes=Client.SCOPES_SUPPORTED,
                token_endpoint_auth_method="client_secret_basic",
            )
        )
        return "", 204

    @app.post("/test/rotate-keys")
    def rotate_keys():
        body = flask.request.get_json(silent=True) or {}
        if body.get("keep_previous", True):
            previous_keys.insert(0, storage.jwk)
        else:
            previous_keys.clear()
        storage.jwk = jose.RSAKey.generate_key(is_private=True)
        return flask.jsonify({"kid": kid_of(storage.jwk)})

    stranger = jose.RSAKey.generate_key(is_private=True)

    @app.post("/test/id-token")
    def id_token():
        body = flask.request.get_json(force=True)
        which = body.get("key", "current")
        key = {
            "current": storage.jwk,
            "previous": previous_keys[0] if previous_keys else None,
            "stranger": stranger,
        }[which]
        if key is None:
            return flask.jsonify({"error": "no previous key: rotate first"}), 400
        now = int(time.time())
        claims = {"iss": issuer(), "iat": now, "exp": now + token_max_age, "auth_time": now}
        claims.update(body.get("claims", {}))
        # A forgery names the key it pretends to be signed by.
        kid = kid_of(storage.jwk if which == "stranger" else key)
        header = {"typ": "JWT", "alg": ALG, "kid": kid, **body.get("header", {})}
        private = RSAKey.import_key(key.as_dict(is_private=True))
        return flask.jsonify({"id_token": jwt.encode(header, claims, private, [ALG])})

    return app


def main():
    global require_pkce
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--require-pkce", action="store_true")
    parser.add_argument("--token-max-age", type=int, default=3600)
    parser.add_argument("--cache-max-age", type=int, default=None)
    args = parser.parse_args()
    require_pkce = args.require_pkce

    app = build_app(args.token_max_age, args.cache_max_age)
    server = werkzeug.serving.make_server(
        "127.0.0.1", args.port, app, threaded=True, request_handler=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    try:
        # The harness holds our stdin open; when it goes away (even by crashing), so do we.
        sys.stdin.buffer.read()
    finally:
        server.shutdown()


class QuietHandler(werkzeug.serving.WSGIRequestHandler):
    """Logs one line a request on stderr, without colours."""

    def log_request(self, code="-", size="-"):
        sys.stderr.write(f"{self.command} {self.path} {code}\n")


if __name__ == "__main__":
    main()
