# Generates golden.json with flask-jwt-extended 4.7.1 / PyJWT 2.10.1 as
# Superset 6.1.0 configures them (no JWT_* keys: HS256, key = SECRET_KEY,
# identity = str(user.id)). Run with Superset 6.1.0's virtualenv:
#   $SUPERSET_VENV/bin/python gen_golden.py > golden.json
import json, time
import jwt
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

app = Flask("x")
app.config["SECRET_KEY"] = "golden-secret-key-for-tests-0123456789"
JWTManager(app)
with app.app_context():
    access = create_access_token(identity="1", fresh=True)
    refresh = create_refresh_token(identity="1")
guest_claims = {
    "user": {"username": "embed", "first_name": "Em", "last_name": "Bed"},
    "resources": [{"type": "dashboard", "id": "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"}],
    "rls_rules": [{"dataset": 1, "clause": "region = 'EU'"}],
    "iat": time.time(),
    "exp": time.time() + 300,
    "aud": "http://0.0.0.0:8080/",
    "type": "guest",
}
guest = jwt.encode(guest_claims, "test-guest-secret-change-me", algorithm="HS256")
print(json.dumps({"secret": app.config["SECRET_KEY"], "access": access, "refresh": refresh,
                  "guest_secret": "test-guest-secret-change-me", "guest_audience": "http://0.0.0.0:8080/",
                  "guest": guest}, indent=1))
