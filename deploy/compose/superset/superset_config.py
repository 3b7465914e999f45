# Superset 6.1.0 behind superset-gateway (docker compose deployment).
#
# Only what differs from Superset's defaults, and why. The lines marked
# GATEWAY are the ones an operator moving from nginx to the gateway must
# change in an existing superset_config.py (docs/deploy.md explains each).
import os


def _secret(name):
    # Compose mounts secrets at /run/secrets/<name>. One trailing newline
    # is dropped, exactly as the gateway reads the same file, so both hold
    # the same bytes.
    with open(os.path.join("/run/secrets", name), encoding="utf-8") as f:
        value = f.read()
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value


# GATEWAY: the gateway verifies Superset's session cookie and mints API
# JWTs with this key, so both read it from the same secret file.
SECRET_KEY = _secret("superset_secret_key")

SQLALCHEMY_DATABASE_URI = "postgresql+psycopg2://superset:{}@postgres:5432/superset".format(
    _secret("postgres_password")
)

# GATEWAY: the gateway removes every X-Forwarded-* a client sent (unless
# the client is in its trusted_proxies) and sets X-Forwarded-For, -Proto
# and -Host itself: one value each for -Proto and -Host. X-Forwarded-For is
# the trusted proxies' chain plus the gateway's peer, so x_for is 1 + the
# number of trusted proxies in front of the gateway (a load balancer in
# trusted_proxies: 2), or Superset takes the load balancer for the client
# (its rate limit and logs would see one address). This deployment has
# none in front: 1.
ENABLE_PROXY_FIX = True
PROXY_FIX_CONFIG = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1}

# GATEWAY: the gateway sets the security headers (HSTS when public_url is
# https, X-Content-Type-Options, frame-ancestors on /embedded/,
# headers.overrides). Superset's Talisman may stay on for its
# Content-Security-Policy; if it does, its frame-ancestors must allow the
# same embedding hosts as the gateway's headers.frame_ancestors, or embedded
# dashboards break. Talisman's force_https must stay off: the gateway (or
# the load balancer) terminates TLS.
TALISMAN_ENABLED = True

# GATEWAY: Superset's own limiter (Flask-Limiter, 50 requests/s per client
# address, on in production) sees the gateway's X-Forwarded-For only
# through ProxyFix above; without ProxyFix every user shares the gateway's
# address and one busy user throttles everybody. The gateway's own limits
# (docs/configuration.md) come first; the storage is shared Redis so the
# limit holds across Superset nodes.
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "redis://redis:6379/3"

# GATEWAY: browsers never see Superset's session cookie (the gateway keeps
# it encrypted server-side and hands out its own), so its attributes only
# matter to the gateway. Keep the defaults; SESSION_SERVER_SIDE may stay as
# it is (True or False both work behind the gateway).
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True

# GATEWAY: embedded dashboards. The gateway verifies guest tokens with the
# same secret (superset.guest_token_secret_file) and audience
# (superset.guest_token_audience) to refuse revoked ones.
FEATURE_FLAGS = {"EMBEDDED_SUPERSET": True}
GUEST_TOKEN_JWT_SECRET = _secret("superset_guest_token_secret")
GUEST_TOKEN_JWT_AUDIENCE = None
GUEST_ROLE_NAME = "Gamma"

# Caches, Celery and results on the Superset Redis (not the gateway's).
_redis = "redis://redis:6379"
CACHE_CONFIG = {
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "superset_",
    "CACHE_REDIS_URL": _redis + "/1",
}
DATA_CACHE_CONFIG = dict(CACHE_CONFIG, CACHE_KEY_PREFIX="superset_data_")


class CeleryConfig:
    broker_url = _redis + "/0"
    result_backend = _redis + "/0"
    imports = ("superset.sql_lab", "superset.tasks.scheduler")
    worker_prefetch_multiplier = 1
    task_acks_late = False


CELERY_CONFIG = CeleryConfig

SCARF_ANALYTICS = False
