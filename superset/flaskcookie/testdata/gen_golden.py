# Generates golden.json with Flask 2.3.3 / itsdangerous 2.2.0 (Superset 6.1.0 venv):
#   $SUPERSET_VENV/bin/python gen_golden.py > golden.json
import json, time, uuid, datetime
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup
app = Flask("x")
app.secret_key = "golden-secret-key-for-tests"
si = SecureCookieSessionInterface()
s = si.get_signing_serializer(app)
vecs = []
cases = [
  ("plain_user", {"_user_id": "1", "_fresh": True, "csrf_token": "0123456789abcdef0123456789abcdef01234567"}),
  ("flashes_tuple", {"_flashes": [("warning", "Invalid login. Please try again.")], "csrf_token": "aa"*20}),
  ("compressed", {"_user_id": "42", "csrf_token": "ab"*20, "pad": "x"*300}),
  ("tagged", {"b": b"\x00\x01hello", "m": Markup("<b>hi</b>"), "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
              "d": datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc), "di": {" t": "x"}, "_user_id": None}),
  ("numeric_user", {"_user_id": 7}),
  ("empty", {}),
]
import itsdangerous, itsdangerous.timed
for name, data in cases:
    # fixed timestamp via monkeypatch of get_timestamp
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: 1780000000
    v = s.dumps(data)
    vecs.append({"name": name, "cookie": v, "timestamp": 1780000000})
print(json.dumps({"secret": app.secret_key, "vectors": vecs}, indent=1))
