"""Differential oracle: how Superset 6.1.0's stack reads a raw request.

Run with the Python of the cached Superset venv. It reads JSON lines on
stdin, {"raw": "<base64 of the request bytes as sent to gunicorn>"}, and
answers one JSON line each on stdout. The bytes go through gunicorn 23's
own RequestParser and wsgi.create (peer 127.0.0.1, gunicorn's default
config, as the e2e nodes run), then through Flask's Request (Werkzeug)
for the media type, form, cookies and headers, and through
flask-jwt-extended's own header reader for the Authorization credential.
No socket, no Superset app: nothing here can differ by configuration
except what the gateway's e2e nodes also use.

Strings taken from header bytes are WSGI strings: each character is one
byte (Latin-1), so the Go client turns them back into the exact bytes.
Form values are text as Werkzeug decoded it.
"""

import base64
import io
import json
import sys
import traceback

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_jwt_extended.view_decorators import _decode_jwt_from_headers
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser
from werkzeug.wrappers import Request as _  # noqa: F401 (Flask's Request is Werkzeug's)

PEER = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", "8088")


class _Sock:
    """Stands in for the client socket: wsgi.create only writes to it for
    Expect: 100-continue."""

    def send(self, data):
        return len(data)

    sendall = send


def _app():
    app = Flask("oracle")
    # flask-jwt-extended's defaults, as Superset leaves them: header
    # Authorization, type Bearer.
    app.config["JWT_SECRET_KEY"] = "oracle"
    JWTManager(app)
    return app


def _bearer(app, environ):
    with app.request_context(environ):
        try:
            tok, _ = _decode_jwt_from_headers()
            return tok, ""
        except Exception as e:  # NoAuthorizationError, InvalidHeaderError
            return None, type(e).__name__


def parse(app, raw):
    cfg = Config()
    try:
        parser = RequestParser(cfg, iter([raw]), PEER)
        req = next(parser)
        _, environ = wsgi.create(req, _Sock(), PEER, SERVER, cfg)
    except StopIteration:
        return {"error": "no request"}
    except Exception as e:
        return {"error": "gunicorn: %s: %s" % (type(e).__name__, e)}
    out = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ["PATH_INFO"],
        "script_name": environ.get("SCRIPT_NAME", ""),
        "query": environ.get("QUERY_STRING", ""),
        "content_type": environ.get("CONTENT_TYPE"),
        "headers": [[k, v] for k, v in environ.items() if k.startswith("HTTP_")],
    }
    body = req.body.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    out["body_len"] = len(body)
    with app.request_context(environ):
        from flask import request

        out["mimetype"] = request.mimetype
        out["mimetype_params"] = request.mimetype_params
        out["x_guesttoken"] = request.headers.get("X-GuestToken")
        out["query_guest_token"] = request.args.getlist("guest_token")
        out["cookies"] = [[k, v] for k, v in request.cookies.items(multi=True)]
        try:
            form = request.form
            out["form_guest_token"] = form.getlist("guest_token")
            # What get_guest_user_from_request reads: the header, else
            # the first form value.
            out["superset_guest_token"] = request.headers.get("X-GuestToken") or form.get("guest_token")
            out["form_keys"] = list(form.keys())
        except Exception as e:
            out["form_error"] = type(e).__name__
            out["form_guest_token"] = []
            out["superset_guest_token"] = request.headers.get("X-GuestToken")
    out["bearer"], out["bearer_error"] = _bearer(app, environ)
    return out


def main():
    app = _app()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            raw = base64.b64decode(json.loads(line)["raw"])
            res = parse(app, raw)
        except Exception:
            res = {"error": "oracle: " + traceback.format_exc(limit=3)}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
