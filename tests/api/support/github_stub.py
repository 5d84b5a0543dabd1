"""A stand-in for GitHub's OAuth app endpoints, for Tessera's `github` provider tests.

    github_stub.py --port PORT --config FILE

FILE (JSON): {"clients": {"<client_id>": {"secret": "...", "redirect_uris": ["..."]}},
              "users": [{"id": 1, "login": "octocat", "name": "The Octocat",
                         "email": null,
                         "emails": [{"email": "o@example.com", "primary": true,
                                     "verified": true, "visibility": "private"}],
                         "codes": ["a-code"]}]}
`redirect_uris` may be left out (any); `codes` are single-use codes issued up front, for a test
that POSTs a `code` without going through the authorization step.

Speaks GitHub's wire format (docs.github.com, "Authorizing OAuth apps", "Troubleshooting OAuth
app access token request errors", REST "Users" and "Emails"):

- GET  /login/oauth/authorize?client_id&redirect_uri&state&scope[&login]: GitHub's consent page
  stands here; it authorizes at once as the user `login` names (GitHub's own "suggest this
  account" parameter; the first user without it) and 302s to redirect_uri with code and state.
  code_challenge (S256) is kept and checked against code_verifier, as GitHub does since 2025.
- POST /login/oauth/access_token (client_id, client_secret, code[, redirect_uri,
  code_verifier], as a form, JSON or HTTP Basic for the client): answers JSON with
  `Accept: application/json`, else a form body, as GitHub does. Errors answer status 200 with
  {"error", "error_description", "error_uri"}: incorrect_client_credentials,
  redirect_uri_mismatch, bad_verification_code.
- GET  /user and /user/emails (also under /api/v3, GitHub Enterprise's layout), with
  `Authorization: token T` or `Bearer T`: 401 "Bad credentials" otherwise; /user/emails is
  404 when the token lacks the `user:email` (or `user`) scope.

Test-only: POST /_stub/codes {"login", "scope"} -> {"code"}. Prints its base URL once
listening; exits when stdin closes or on SIGTERM. One line a request on stderr.
"""

import argparse
import base64
import hashlib
import json
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

CODE_LIFETIME = 600  # GitHub: "expire after 10 minutes"
DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
TOKEN_ERRORS = {
    "incorrect_client_credentials": (
        "The client_id and/or client_secret passed are incorrect.",
        f"{DOCS}/#incorrect-client-credentials",
    ),
    "redirect_uri_mismatch": (
        "The redirect_uri MUST match the registered callback URL for this application.",
        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2",
    ),
    "bad_verification_code": (
        "The code passed is incorrect or expired.",
        f"{DOCS}/#bad-verification-code",
    ),
}


class State:
    def __init__(self, config):
        self.clients = config.get("clients", {})
        self.users = config.get("users", [])
        self.lock = threading.Lock()
        # code -> {"user", "client_id", "redirect_uri", "scope", "challenge", "expires"}
        self.codes = {}
        self.tokens = {}  # token -> {"user", "scope"}
        for user in self.users:
            for code in user.get("codes", []):
                self.codes[code] = self.grant(user, None, None, "user:email", None)

    @staticmethod
    def grant(user, client_id, redirect_uri, scope, challenge):
        return {
            "user": user,
            "client_id": client_id,  # None: any client (codes from the config file)
            "redirect_uri": redirect_uri,
            "scope": scope,
            "challenge": challenge,
            "expires": time.time() + CODE_LIFETIME,
        }

    def user(self, login):
        for user in self.users:
            if login is None or user["login"] == login:
                return user
        return None

    def issue_code(self, *args):
        code = secrets.token_hex(10)  # GitHub's codes are 20 hex characters
        with self.lock:
            self.codes[code] = self.grant(*args)
        return code


def granted_scope(requested):
    """GitHub answers the granted scopes comma-separated; requests may use spaces or commas."""
    return ",".join(s for s in requested.replace(",", " ").split() if s)


def public_user(user):
    login = user["login"]
    return {
        "login": login,
        "id": user["id"],
        "node_id": base64.b64encode(f"04:User{user['id']}".encode()).decode(),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user['id']}?v=4",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
        "name": user.get("name"),
        "company": None,
        "blog": "",
        "location": None,
        "email": user.get("email"),
        "hireable": None,
        "bio": None,
        "public_repos": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }


def email_entry(entry):
    return {
        "email": entry["email"],
        "primary": bool(entry.get("primary", False)),
        "verified": bool(entry.get("verified", False)),
        "visibility": entry.get("visibility"),
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "GitHub.com"
    state: State

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    # Replies

    def reply(self, status, body, content_type="application/json; charset=utf-8", headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def json(self, status, value):
        self.reply(status, json.dumps(value))

    def api_error(self, status, message, documentation_url):
        self.json(
            status,
            {"message": message, "documentation_url": documentation_url, "status": str(status)},
        )

    def token_answer(self, fields):
        """JSON when asked for, else a form body (GitHub's default); status 200 either way."""
        if "application/json" in self.headers.get("Accept", ""):
            self.json(200, fields)
        else:
            self.reply(200, urlencode(fields), "application/x-www-form-urlencoded; charset=utf-8")

    def token_error(self, error):
        description, uri = TOKEN_ERRORS[error]
        self.token_answer({"error": error, "error_description": description, "error_uri": uri})

    # Requests

    def body_fields(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return {k: str(v) for k, v in (json.loads(raw or "{}")).items()}
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def bearer(self):
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.state.tokens.get(token.strip())

    def do_GET(self):
        url = urlparse(self.path)
        path = url.path.removeprefix("/api/v3")
        if url.path == "/login/oauth/authorize":
            return self.authorize(parse_qs(url.query))
        if path in ("/user", "/user/emails"):
            grant = self.bearer()
            if grant is None:
                return self.api_error(401, "Bad credentials", "https://docs.github.com/rest")
            user = grant["user"]
            if path == "/user":
                return self.json(200, public_user(user))
            scopes = grant["scope"].split(",")
            if "user:email" not in scopes and "user" not in scopes:
                return self.api_error(
                    404,
                    "Not Found",
                    "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user",
                )
            return self.json(200, [email_entry(e) for e in user.get("emails", [])])
        self.api_error(404, "Not Found", "https://docs.github.com/rest")

    def do_POST(self):
        path = urlparse(self.path).path
        if path == "/login/oauth/access_token":
            return self.access_token(self.body_fields())
        if path == "/_stub/codes":
            fields = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            user = self.state.user(fields.get("login"))
            if user is None:
                return self.json(400, {"error": "no such user"})
            scope = granted_scope(fields.get("scope", "user:email"))
            return self.json(200, {"code": self.state.issue_code(user, None, None, scope, None)})
        self.api_error(404, "Not Found", "https://docs.github.com/rest")

    def authorize(self, query):
        one = lambda name: query.get(name, [None])[0]  # noqa: E731
        client = self.state.clients.get(one("client_id") or "")
        redirect_uri = one("redirect_uri")
        if client is None:
            return self.reply(404, "Not Found", "text/plain; charset=utf-8")
        allowed = client.get("redirect_uris")
        if redirect_uri is None and allowed:
            redirect_uri = allowed[0]
        if redirect_uri is None or (allowed and redirect_uri not in allowed):
            # GitHub shows an error page; with a known redirect it 302s with this error.
            return self.reply(400, "redirect_uri_mismatch", "text/plain; charset=utf-8")
        user = self.state.user(one("login"))
        if user is None:
            return self.reply(400, "no such login", "text/plain; charset=utf-8")
        challenge = None
        if one("code_challenge"):
            if (one("code_challenge_method") or "plain") != "S256":
                return self.reply(400, "code_challenge_method must be S256", "text/plain")
            challenge = one("code_challenge")
        code = self.state.issue_code(
            user, one("client_id"), redirect_uri, granted_scope(one("scope") or ""), challenge
        )
        params = {"code": code}
        if one("state") is not None:
            params["state"] = one("state")
        sep = "&" if "?" in redirect_uri else "?"
        self.reply(302, b"", "text/html", [("Location", redirect_uri + sep + urlencode(params))])

    def access_token(self, fields):
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
        client = self.state.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client["secret"], secret or ""):
            return self.token_error("incorrect_client_credentials")
        with self.state.lock:
            grant = self.state.codes.get(fields.get("code") or "")
            usable = (
                grant is not None
                and grant["expires"] > time.time()
                and grant["client_id"] in (None, client_id)
            )
            if not usable:
                return self.token_error("bad_verification_code")
            redirect_uri = fields.get("redirect_uri")
            if redirect_uri and grant["redirect_uri"] and redirect_uri != grant["redirect_uri"]:
                return self.token_error("redirect_uri_mismatch")
            if grant["challenge"] is not None:
                verifier = fields.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if computed != grant["challenge"]:
                    return self.token_error("bad_verification_code")
            del self.state.codes[fields["code"]]  # single use
            token = "gho_" + secrets.token_urlsafe(27)[:36]
            self.state.tokens[token] = {"user": grant["user"], "scope": grant["scope"]}
        self.token_answer({"access_token": token, "token_type": "bearer", "scope": grant["scope"]})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        Handler.state = State(json.load(f))

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    try:
        # The harness holds our stdin open; when it goes away (even by crashing), so do we.
        sys.stdin.buffer.read()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
