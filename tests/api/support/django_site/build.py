"""Builds a real dj-rest-auth + django-allauth database, for `tessera import-django` tests.

    python build.py --database sqlite:///ABSOLUTE/PATH.db
    python build.py --database postgres://USER[:PASSWORD]@HOST:PORT/DBNAME

The database must be new (an SQLite file that does not exist yet or is empty, an empty
PostgreSQL database). The real Django, allauth and dj-rest-auth create every table (`migrate`)
and every row: users hashed by each of Django's password hashers, allauth's email addresses,
token logins through dj-rest-auth's own `auth/login/`, a signup through
`auth/registration/` confirmed with the key from its mail, dj-rest-auth's MFA (`dj_rest_auth.mfa`)
activated and used through its endpoints, and allauth's MFA (`allauth.mfa`) through allauth's
own API. Nothing is written by hand in a table but a user's `password` for the hashers that are
not the default one, which is what a site that changed `PASSWORD_HASHERS` over the years holds.

Prints one JSON document on stdout describing what it built, read back from the database
(passwords in the clear, as these are test fixtures); everything else goes to stderr.
"""

import argparse
import json
import re
import sys
import types
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

# The signer key of dj-rest-auth's TOTP secrets (`dj_rest_auth.mfa` stores them signed).
SECRET_KEY = "tessera-import-django-fixture-not-secret"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# PBKDF2-SHA256 at Django 3.2's default, as a user who has not logged in since then still has it.
LEGACY_PBKDF2_ITERATIONS = 260_000


def log(*args):
    print(*args, file=sys.stderr)


def database_settings(url):
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///ABSOLUTE/PATH.db: the path is everything after "sqlite://", less any query.
        path = unquote(parts.path)
        if not path.startswith("/"):
            sys.exit(f"build.py: expected sqlite:///ABSOLUTE/PATH.db, got {url}")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    sys.exit(f"build.py: unsupported database URL {url} (sqlite:///... or postgres://...)")


def configure(url):
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DATABASES={"default": database_settings(url)},
        # As `startproject` writes it.
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.sites",
            "rest_framework",
            "rest_framework.authtoken",
            "allauth",
            "allauth.account",
            # dj_rest_auth.registration's views import its models.
            "allauth.socialaccount",
            "allauth.mfa",
            "dj_rest_auth",
            "dj_rest_auth.registration",
            "dj_rest_auth.mfa",
        ],
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "allauth.account.middleware.AccountMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        ROOT_URLCONF="tessera_fixture_urls",
        SITE_ID=1,
        PASSWORD_HASHERS=PASSWORD_HASHERS,
        AUTHENTICATION_BACKENDS=[
            "django.contrib.auth.backends.ModelBackend",
            "allauth.account.auth_backends.AuthenticationBackend",
        ],
        ACCOUNT_LOGIN_METHODS={"email", "username"},
        ACCOUNT_SIGNUP_FIELDS=["email*", "username*", "password1*", "password2*"],
        ACCOUNT_EMAIL_VERIFICATION="optional",
        ACCOUNT_RATE_LIMITS=False,
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "rest_framework.authentication.TokenAuthentication",
                "rest_framework.authentication.SessionAuthentication",
            ],
        },
        REST_AUTH={
            "TOKEN_MODEL": "rest_framework.authtoken.models.Token",
            "USE_JWT": False,
            "SESSION_LOGIN": True,
        },
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    )

    import django

    django.setup()

    # The URLconf of a dj-rest-auth site with its MFA: `auth/login/` is dj-rest-auth's
    # MFALoginView (as dj_rest_auth/tests/mfa_urls.py wires it), the rest its own URLs.
    from django.urls import include, path, re_path

    from dj_rest_auth.mfa.views import MFALoginView

    urls = types.ModuleType("tessera_fixture_urls")
    urls.urlpatterns = [
        re_path(r"^auth/login/?$", MFALoginView.as_view(), name="rest_login"),
        path("auth/", include("dj_rest_auth.urls")),
        path("auth/", include("dj_rest_auth.mfa.urls")),
        path("auth/registration/", include("dj_rest_auth.registration.urls")),
    ]
    sys.modules[urls.__name__] = urls


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def post(client, url, body, token=None, expect=200):
    extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    reply = client.post(url, body, content_type="application/json", **extra)
    if reply.status_code != expect:
        sys.exit(f"build.py: POST {url} answered {reply.status_code}: {reply.content!r}")
    return reply.json()


def build():
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
    from django.contrib.auth.models import User
    from django.core import mail
    from django.core.management import call_command
    from django.test import Client

    from allauth.account.models import EmailAddress
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes as AllauthRecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP as AllauthTOTP
    from allauth.mfa.totp.internal.auth import generate_totp_secret
    import pyotp

    call_command("migrate", interactive=False, verbosity=1, stdout=sys.stderr)
    if User.objects.exists():
        sys.exit("build.py: the database already has users; give it a new one")

    fixture = {}  # username -> what only the builder knows (passwords, codes)

    def user(username, email, password, hasher=None, *, joined, last_login=None,
             emails=(), **fields):
        """A user as `createsuperuser`, the admin or an old signup left it: the password
        hashed by `hasher` (None: the default), `emails` its allauth addresses."""
        u = User(username=username, email=email, date_joined=at(joined),
                 last_login=at(last_login) if last_login else None, **fields)
        if password is None:
            u.set_unusable_password()
        elif hasher is None:
            u.set_password(password)
        else:
            u.password = hasher(password)
        u.save()
        for address, verified, primary in emails:
            EmailAddress.objects.create(user=u, email=address, verified=verified,
                                        primary=primary)
        fixture[username] = {"password": password}
        return u

    def hashed(name):
        return lambda password: make_password(password, hasher=name)

    alice = user(
        "alice", "alice@example.com", "Wonderland-Tea-Party-1865",
        joined="2021-03-14 09:26:53", is_staff=True, is_superuser=True,
        first_name="Alice", last_name="Liddell",
        emails=[("alice@example.com", True, True),
                ("alice.liddell@wonderland.example", True, False)],
    )
    user(
        "bob", "bob@example.org", "Argon2-is-memory-hard!", hashed("argon2"),
        joined="2021-06-01 12:00:00", last_login="2024-11-02 08:15:00",
        first_name="Bob", last_name="Marley",
        emails=[("bob@example.org", True, True), ("bob.old@example.net", False, False)],
    )
    # Deleted: the ids that follow skip one, as on any site that has lost a user.
    mallory = user("mallory", "mallory@example.net", "Deleted-Anyway-0",
                   hashed("pbkdf2_sha1"), joined="2021-07-07 07:07:07",
                   emails=[("mallory@example.net", False, True)])
    deleted = [mallory.pk]
    mallory.delete()
    carol = user(
        "carol", "carol@example.com", "Two-Factors-Are-Better", joined="2022-01-10 17:45:00",
        first_name="Carol", last_name="Danvers",
        emails=[("carol@example.com", True, True)],
    )
    user(
        "dave", "dave@example.org", "Bcrypt-SHA256-Pre-Hashed", hashed("bcrypt_sha256"),
        joined="2022-02-02 02:02:02", last_login="2022-03-01 10:00:00", is_active=False,
        emails=[("dave@example.org", False, True)],
    )
    erin = user(
        "erin", "erin@example.de", "lètmein-ÄÖ", joined="2022-05-05 05:05:05",
        first_name="Érin", last_name="Müller",
        emails=[("erin@example.de", True, True)],
    )
    user(
        "frank", "frank@example.com", "Scrypt-Needs-Memory-16384", hashed("scrypt"),
        joined="2022-08-08 08:08:08", last_login="2025-01-20 19:30:00",
        emails=[("frank@example.com", True, True)],
    )
    user(
        "grace", "grace@example.org", "PBKDF2-With-SHA1-Still", hashed("pbkdf2_sha1"),
        joined="2022-09-09 09:09:09", last_login="2023-04-01 00:00:00",
        first_name="Grace", last_name="Hopper",
        emails=[("grace@example.org", False, True)],
    )
    # A password that was never set (a social-only or admin-invited account).
    user("heidi", "heidi@example.com", None, joined="2023-01-01 12:00:00",
         emails=[("heidi@example.com", True, True)])
    user(
        "ivan", "ivan@example.net", "Allauth-MFA-Authenticator",
        lambda password: PBKDF2PasswordHasher().encode(
            password, PBKDF2PasswordHasher().salt(), LEGACY_PBKDF2_ITERATIONS),
        joined="2023-02-14 14:14:14", last_login="2023-02-15 09:00:00",
        emails=[("ivan@example.net", True, True)],
    )
    user(
        "judy", "judy@example.org", "Plain-Bcrypt-Under-72-Bytes", hashed("bcrypt"),
        joined="2023-03-03 03:03:03",
        emails=[("judy@example.org", True, True)],
    )

    client = Client()

    # Token logins through dj-rest-auth, by username and by email.
    post(client, "/auth/login/", {"username": "alice", "password": "Wonderland-Tea-Party-1865"})
    post(Client(), "/auth/login/", {"email": "erin@example.de", "password": "lètmein-ÄÖ"})

    # A signup through dj-rest-auth's registration (allauth's signup), confirmed with the key
    # allauth mailed.
    kim_password = "Signed-Up-Through-The-API"
    post(Client(), "/auth/registration/", {
        "username": "kim", "email": "kim@example.com",
        "password1": kim_password, "password2": kim_password,
    }, expect=201)
    fixture["kim"] = {"password": kim_password}
    keys = re.findall(r"account-confirm-email/([-:\w]+)/", mail.outbox[-1].body)
    if not keys:
        sys.exit(f"build.py: no confirmation key in {mail.outbox[-1].body!r}")
    post(Client(), "/auth/registration/verify-email/", {"key": keys[0]})

    # dj-rest-auth's MFA for carol, through its endpoints: log in, activate TOTP with a code
    # from the secret it hands out (recovery codes come with it), then log in twice more,
    # once finishing with a TOTP code and once with a recovery code.
    carol_client = Client()
    token = post(carol_client, "/auth/login/",
                 {"username": "carol", "password": "Two-Factors-Are-Better"})["key"]
    reply = carol_client.get("/auth/mfa/totp/activate/", HTTP_AUTHORIZATION=f"Token {token}")
    if reply.status_code != 200:
        sys.exit(f"build.py: GET auth/mfa/totp/activate/ answered {reply.status_code}")
    secret = reply.json()["secret"]
    codes = post(carol_client, "/auth/mfa/totp/activate/", {
        "activation_token": reply.json()["activation_token"],
        "code": pyotp.TOTP(secret).now(),
    }, token=token)["recovery_codes"]
    ephemeral = post(Client(), "/auth/login/",
                     {"email": "carol@example.com", "password": "Two-Factors-Are-Better"})
    post(Client(), "/auth/mfa/verify/",
         {"ephemeral_token": ephemeral["ephemeral_token"], "code": pyotp.TOTP(secret).now()})
    ephemeral = post(Client(), "/auth/login/",
                     {"username": "carol", "password": "Two-Factors-Are-Better"})
    used = codes[2]
    post(Client(), "/auth/mfa/verify/",
         {"ephemeral_token": ephemeral["ephemeral_token"], "code": used})
    fixture["carol"].update(mfa_app="dj_rest_auth.mfa", totp_secret=secret,
                            recovery_codes_all=codes, recovery_codes_used=[used])

    # allauth's MFA for ivan, through allauth's own API (what its views call): a TOTP
    # authenticator, recovery codes, and one of them used.
    ivan = User.objects.get(username="ivan")
    secret = generate_totp_secret()
    AllauthTOTP.activate(ivan, secret)
    recovery = AllauthRecoveryCodes.activate(ivan)
    codes = recovery.generate_codes()
    used = codes[1]
    if not recovery.validate_code(used):
        sys.exit("build.py: allauth did not take its own recovery code")
    fixture["ivan"].update(mfa_app="allauth.mfa", totp_secret=secret,
                           recovery_codes_all=codes, recovery_codes_used=[used])

    return describe(fixture, deleted)


def describe(fixture, deleted):
    """What is in the database now, read back from it, with what only the builder knows."""
    from importlib.metadata import version

    from django.contrib.auth.hashers import identify_hasher, is_password_usable
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator as AllauthAuthenticator
    from dj_rest_auth.mfa.models import Authenticator as RestAuthAuthenticator

    def iso(value):
        return value.isoformat() if value else None

    users = []
    for u in User.objects.order_by("pk"):
        known = fixture[u.username]
        authenticators = [
            {"app": app, "type": a.type, "data": a.data}
            for app, model in (("dj_rest_auth.mfa", RestAuthAuthenticator),
                               ("allauth.mfa", AllauthAuthenticator))
            for a in model.objects.filter(user=u).order_by("pk")
        ]
        used = known.get("recovery_codes_used")
        token = Token.objects.filter(user=u).first()
        users.append({
            "id": u.pk,
            "username": u.username,
            "email": u.email,
            "password": known["password"],
            "password_hash": u.password,
            "hasher": identify_hasher(u.password).algorithm
            if is_password_usable(u.password) else None,
            "is_active": u.is_active,
            "is_staff": u.is_staff,
            "is_superuser": u.is_superuser,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "date_joined": iso(u.date_joined),
            "last_login": iso(u.last_login),
            "emails": [
                {"email": e.email, "verified": e.verified, "primary": e.primary}
                for e in EmailAddress.objects.filter(user=u).order_by("pk")
            ],
            "token": token.key if token else None,
            "mfa_app": known.get("mfa_app"),
            "totp_secret": known.get("totp_secret"),
            "recovery_codes_unused": [c for c in known["recovery_codes_all"] if c not in used]
            if used is not None else None,
            "recovery_codes_used": used,
            "authenticators": authenticators,
        })
    return {
        "users": users,
        "deleted_user_ids": deleted,
        "secret_key": SECRET_KEY,
        "versions": {
            "python": sys.version.split()[0],
            "django": version("Django"),
            "allauth": version("django-allauth"),
            "dj_rest_auth": version("dj-rest-auth"),
            "djangorestframework": version("djangorestframework"),
            "pyotp": version("pyotp"),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True,
                        help="sqlite:///ABSOLUTE/PATH.db or postgres://USER@HOST:PORT/DBNAME")
    args = parser.parse_args()
    configure(args.database)
    # Anything Django or a library prints goes to stderr; stdout holds the JSON alone.
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        result = build()
    finally:
        sys.stdout = stdout
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
