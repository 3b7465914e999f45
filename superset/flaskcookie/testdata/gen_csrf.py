# Generates csrf.json: Flask-WTF 1.2.2's signed CSRF token (the value of the
# csrf_token form field and of GET /api/v1/security/csrf_token/) next to the
# raw token it keeps in the session. Run with Superset 6.1.0's virtualenv:
#   $SUPERSET_VENV/bin/python gen_csrf.py > csrf.json
import json
import itsdangerous.timed
from flask import Flask, session
from flask_wtf.csrf import generate_csrf

itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: 1780000000
app = Flask("x")
app.secret_key = "golden-secret-key-for-tests"
with app.test_request_context("/"):
    signed = generate_csrf()
    print(json.dumps({"secret": app.secret_key, "raw": session["csrf_token"], "signed": signed, "timestamp": 1780000000}, indent=1))
