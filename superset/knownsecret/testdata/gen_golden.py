# Generates golden.json: a Flask session cookie (Flask 2.3 / itsdangerous 2.2
# SecureCookieSessionInterface, as Superset 6.1.0 signs them) and a guest
# token (PyJWT, as Superset's SupersetSecurityManager.create_guest_access_token
# shapes them) under every built-in known secret, plus one random key that
# is on no list. Run with Superset 6.1.0's virtualenv:
#   $SUPERSET_VENV/bin/python gen_golden.py > golden.json
import json, secrets
import jwt
import itsdangerous.timed
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

KEYS = {
    "superset-change-me": "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
    "superset-legacy-default": "\2\1thisismyscretkey\1\2\\e\\y\\y\\h",
    "superset-legacy-default-literal": r"\2\1thisismyscretkey\1\2\e\y\y\h",
    "superset-helm-chart": "thisISaSECRET_1234",
    "superset-docker-env": "TEST_NON_DEV_SECRET",
    "superset-docs-example": "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
    "superset-guest-default": "test-guest-secret-change-me",
    "superset-async-default": "test-secret-change-me",
    "placeholder-secret": "secret",
    "placeholder-changeme": "changeme",
    "placeholder-superset": "superset",
    "placeholder-your-secret": "your-secret-key",
    "unlisted": secrets.token_urlsafe(32),
}
itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: 1780000000
si = SecureCookieSessionInterface()
out = []
for kid, key in KEYS.items():
    app = Flask("x")
    app.secret_key = key
    cookie = si.get_signing_serializer(app).dumps({"csrf_token": "ab" * 20})
    token = jwt.encode({
        "user": {"username": "guest", "first_name": "g", "last_name": "g"},
        "resources": [{"type": "dashboard", "id": "1"}],
        "rls_rules": [], "iat": 1780000000.5, "exp": 1780000300.5,
        "aud": "superset", "type": "guest"}, key, algorithm="HS256")
    out.append({"id": kid, "cookie": cookie, "guest_token": token})
print(json.dumps({"flask": __import__("flask").__version__, "pyjwt": jwt.__version__, "vectors": out}, indent=1))
