# Superset configuration for superset-gateway's end-to-end tests and demo.
#
# The harness (e2e/harness) copies this file into a throw-away Superset home
# next to settings.json, which holds everything that varies per run (secrets,
# paths, Redis URL). Keeping this file static means it can be read and
# reviewed as-is; SUPERSET_CONFIG_PATH points at the copy.
import json
import os

_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "settings.json"), encoding="utf-8") as _f:
    _s = json.load(_f)

SECRET_KEY = _s["secret_key"]
SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(_here, "superset.db") + "?check_same_thread=false"
DATA_DIR = _here

FEATURE_FLAGS = {"EMBEDDED_SUPERSET": True}
GUEST_TOKEN_JWT_SECRET = _s["guest_token_secret"]
GUEST_TOKEN_JWT_AUDIENCE = _s["guest_token_audience"]
# Guests get the Gamma role's permissions (dashboard and chart reads, /api/v1/me/)
# so an API call with X-GuestToken reaches a guarded endpoint; the default
# "Public" role is empty unless PUBLIC_ROLE_LIKE is set, which would also open
# those endpoints to anonymous callers.
GUEST_ROLE_NAME = "Gamma"

# The gateway sets X-Forwarded-For/-Proto/-Host/-Port/-Prefix; trust one hop.
ENABLE_PROXY_FIX = not _s.get("no_proxy_fix", False)
PROXY_FIX_CONFIG = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1}

# The CSP of Talisman is not what the gateway tests; frame-ancestors lets the
# browser tests embed /embedded/<uuid> in a page of the test's own origin.
TALISMAN_ENABLED = _s.get("talisman", False)
if TALISMAN_ENABLED:
    from superset.config import TALISMAN_CONFIG as _tc  # noqa: E402

    TALISMAN_CONFIG = dict(_tc)
    TALISMAN_CONFIG["content_security_policy"] = dict(_tc["content_security_policy"])
    TALISMAN_CONFIG["content_security_policy"]["frame-ancestors"] = _s.get("frame_ancestors", ["'self'"])

WTF_CSRF_ENABLED = _s.get("csrf", True)

# The harness registers a SQLite file as a queryable database (SQL Lab and
# a dataset for the access-token tests); Superset refuses sqlite:// URIs
# unless this is off. Never do this in production: it lets anyone allowed to
# add databases open files on Superset's host.
PREVENT_UNSAFE_DB_CONNECTIONS = False

# Quiet and deterministic: no example data, no telemetry, no thumbnails.
SUPERSET_LOAD_EXAMPLES = False
SCARF_ANALYTICS = False
THUMBNAIL_SELENIUM_USER = None

if _s.get("redis_url"):
    from redis import Redis  # noqa: E402

    SESSION_SERVER_SIDE = True
    SESSION_TYPE = "redis"
    SESSION_REDIS = Redis.from_url(_s["redis_url"])

# Optional: sign-in through one OAuth2 provider (the OAuth end-to-end test
# starts a small one on loopback). Needs Authlib, which FAB imports only here.
_oauth = _s.get("oauth")
if _oauth:
    from flask_appbuilder.security.manager import AUTH_OAUTH  # noqa: E402

    AUTH_TYPE = AUTH_OAUTH
    AUTH_USER_REGISTRATION = True
    AUTH_USER_REGISTRATION_ROLE = _oauth.get("registration_role") or "Gamma"
    # POST /api/v1/security/login with provider "db" (the harness's fixtures)
    # still works: FAB checks the provider only under AUTH_DB and AUTH_LDAP.
    OAUTH_PROVIDERS = [
        {
            "name": _oauth["name"],
            "icon": "fa-key",
            "token_key": "access_token",
            "remote_app": {
                "client_id": _oauth["client_id"],
                "client_secret": _oauth["client_secret"],
                "authorize_url": _oauth["authorize_url"],
                "access_token_url": _oauth["token_url"],
                "api_base_url": _oauth["api_base_url"],
                "client_kwargs": {"scope": _oauth.get("scope") or "email profile"},
            },
        }
    ]

# Optional: REMOTE_USER sign-in, as behind a single-sign-on proxy that puts
# the user in a request header. FAB's AuthRemoteUserView signs in whoever
# REMOTE_USER names on GET /login/; this middleware copies the header there.
_remote_header = _s.get("remote_user_header")
if _remote_header:
    from flask_appbuilder.security.manager import AUTH_REMOTE_USER  # noqa: E402

    AUTH_TYPE = AUTH_REMOTE_USER
    _remote_key = "HTTP_" + _remote_header.upper().replace("-", "_")

    class _RemoteUserFromHeader:
        def __init__(self, app):
            self.app = app

        def __call__(self, environ, start_response):
            user = environ.get(_remote_key)
            if user:
                environ["REMOTE_USER"] = user
            return self.app(environ, start_response)

    ADDITIONAL_MIDDLEWARE = [_RemoteUserFromHeader]

    # Superset 6.1 registers its own React login view at /login/ whatever
    # AUTH_TYPE says, ahead of FAB's AuthRemoteUserView, so REMOTE_USER is
    # never read there; a security manager must opt out of that view.
    from superset.security import SupersetSecurityManager  # noqa: E402

    class _RemoteUserSecurityManager(SupersetSecurityManager):
        register_superset_auth_view = False

    CUSTOM_SECURITY_MANAGER = _RemoteUserSecurityManager

# Optional: sign-in against an LDAP directory (the LDAP end-to-end tests start
# a slapd on loopback). FAB imports python-ldap only when someone signs in.
# Indirect bind: FAB binds as the service account, searches AUTH_LDAP_SEARCH
# for uid=<username>, binds as the entry found with the user's password, and
# reads the entry's memberOf for AUTH_ROLES_MAPPING. Unknown users who bind
# are registered (AUTH_USER_REGISTRATION); every sign-in recomputes roles
# (AUTH_ROLES_SYNC_AT_LOGIN) as the mapped ones plus the registration role.
_ldap = _s.get("ldap")
if _ldap:
    from flask_appbuilder.security.manager import AUTH_LDAP  # noqa: E402

    AUTH_TYPE = AUTH_LDAP
    AUTH_LDAP_SERVER = _ldap["url"]
    AUTH_LDAP_BIND_USER = _ldap["bind_dn"]
    AUTH_LDAP_BIND_PASSWORD = _ldap["bind_password"]
    AUTH_LDAP_SEARCH = _ldap["search_base"]
    AUTH_LDAP_UID_FIELD = _ldap.get("uid_field") or "uid"
    AUTH_LDAP_GROUP_FIELD = _ldap.get("group_field") or "memberOf"
    AUTH_LDAP_FIRSTNAME_FIELD = "givenName"
    AUTH_LDAP_LASTNAME_FIELD = "sn"
    AUTH_LDAP_EMAIL_FIELD = "mail"
    AUTH_USER_REGISTRATION = True
    AUTH_USER_REGISTRATION_ROLE = _ldap.get("registration_role") or "Gamma"
    AUTH_ROLES_MAPPING = _ldap.get("roles_mapping") or {}
    AUTH_ROLES_SYNC_AT_LOGIN = True
    # 6.1.0's common bootstrap data reads app.config["RECAPTCHA_PUBLIC_KEY"]
    # whenever AUTH_USER_REGISTRATION is on and AUTH_TYPE is not AUTH_OAUTH,
    # and nothing defines it: without this line every page (the login page
    # first) is a 500 KeyError.
    RECAPTCHA_PUBLIC_KEY = ""
    # Under AUTH_LDAP, FAB refuses POST /api/v1/security/login with
    # provider "db" ("Alternative authentication provider is not allowed")
    # unless this is set; the harness's fixtures sign in that way as the
    # local admin, whose password is in Superset's database only.
    AUTH_API_LOGIN_ALLOW_MULTIPLE_PROVIDERS = True

# Optional: extensions (.supx bundles) loaded from one directory; the
# extension-policy tests put a passing and a failing bundle there.
if _s.get("extensions_path"):
    FEATURE_FLAGS["ENABLE_EXTENSIONS"] = True
    EXTENSIONS_PATH = _s["extensions_path"]
# superset-gateway's pages in Superset's menu: "Access tokens", "Sessions"
# (and "Gateway admin" for admins) as an "Account" group of the Settings
# dropdown. COMMON_BOOTSTRAP_OVERRIDES_FUNC adds them to the menu_data the
# React navbar reads, for every signed-in user whatever their roles; FAB's
# appbuilder.add_link would need a menu_access permission per link in every
# role (and `superset init` to grant it). The navbar files a top-level entry
# under Settings only when its name is "Data", "Security" or "Manage"; the
# group's title is its label. Same block in docs/deploy.md.
SGW_MENU_LINKS = [("Access tokens", "/-/tokens"), ("Sessions", "/-/sessions")]
SGW_ADMIN_LINKS = [("Gateway admin", "/-/admin/")]
SGW_ADMIN_ROLES = {"Admin"}  # the gateway's admin.roles


def COMMON_BOOTSTRAP_OVERRIDES_FUNC(data):  # noqa: N802
    from flask import g

    menu = data.get("menu_data") or {}
    user = getattr(g, "user", None)
    if not menu or user is None or getattr(user, "is_anonymous", True):
        return {}
    links = list(SGW_MENU_LINKS)
    if {r.name for r in getattr(user, "roles", [])} & SGW_ADMIN_ROLES:
        links += SGW_ADMIN_LINKS
    group = {
        "name": "Manage",
        "label": "Account",
        "icon": "",
        "childs": [{"name": n, "label": n, "icon": "", "url": u} for n, u in links],
    }
    return {"menu_data": dict(menu, menu=list(menu.get("menu") or []) + [group])}
# Superset's own limiter, as SUPERSET_ENV=production turns it on
# (RATELIMIT_ENABLED, RATELIMIT_APPLICATION = "50 per second", keyed by
# flask_limiter's get_remote_address, i.e. the address ProxyFix yields).
# Off unless a test asks (the rate-limit tests): the shared Superset serves
# every test from 127.0.0.1.
if _s.get("ratelimit_application"):
    RATELIMIT_ENABLED = True
    RATELIMIT_APPLICATION = _s["ratelimit_application"]
