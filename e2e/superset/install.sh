#!/usr/bin/env bash
# Installs Apache Superset 6.1.0 (+ gunicorn) into the virtual environment
# VENV, pinned to the dependency set 6.1.0 was released with
# (constraints-6.1.0.txt beside this script = the tag's requirements/base.txt).
#
# Idempotent and cached: a finished install ends by writing VENV/.complete
# holding the sha256 of the constraints file; a directory without a matching
# stamp (interrupted install, changed pins) is wiped and installed afresh.
# Virtual environments are not relocatable, so we install straight into the
# final path and never move it.
#
# Usage: install.sh VENV
set -euo pipefail

SUPERSET_VERSION=6.1.0
here="$(cd "$(dirname "$0")" && pwd)"
constraints="$here/constraints-$SUPERSET_VERSION.txt"

venv="${1:?usage: install.sh VENV}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac

start=$(date +%s)
step() { echo "== superset-env [$(( $(date +%s) - start ))s] $*"; }

# Authlib is Flask-AppBuilder's "oauth" extra: without it Superset cannot
# start with AUTH_TYPE = AUTH_OAUTH (the OAuth end-to-end test needs it). It
# is not among 6.1.0's base pins, so it is pinned here.
AUTHLIB=Authlib==1.9.9
# python-ldap is what FAB imports for AUTH_TYPE = AUTH_LDAP (the LDAP
# end-to-end tests); also not among 6.1.0's pins. PyPI has only its sdist, so
# it is compiled against libldap2-dev and libsasl2-dev (.ci/run installs
# them and gcc); about 15 s on two cores.
PYTHON_LDAP=python-ldap==3.4.8
want="$(sha256sum "$constraints" | cut -d' ' -f1) apache-superset==$SUPERSET_VERSION gunicorn $AUTHLIB $PYTHON_LDAP"
# (Not `superset --help`: every superset command refuses to start without a
# non-default SECRET_KEY.)
if [ -f "$venv/.complete" ] && [ "$(cat "$venv/.complete")" = "$want" ] &&
  "$venv/bin/python" -c 'import importlib.metadata as m; m.version("apache-superset"); m.version("gunicorn"); m.version("authlib"); import ldap' 2>/dev/null; then
  step "Superset $SUPERSET_VERSION already installed in $venv"
  exit 0
fi

# Python 3.11 is what 6.1.0's images use; any 3.10+ works per its pyproject.
py=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
    "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    py="$cand"
    break
  fi
done
if [ -z "$py" ]; then
  echo "install.sh: need python3.11 (or python3 >= 3.10)" >&2
  exit 1
fi

if [ -e "$venv" ]; then
  step "removing incomplete environment $venv"
  rm -rf "$venv"
fi
mkdir -p "$(dirname "$venv")"

step "creating virtualenv with $($py --version 2>&1) at $venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null

# Every pinned dependency has a cp311 manylinux wheel except three pure-Python
# sdist-only packages (pgsanity, wtforms-json, odfpy) and python-ldap (C,
# compiled here), so binary-only for the rest keeps pip from compiling
# anything else. Fall back to allowing any sdist only if a wheel is missing
# on this platform.
step "pip install apache-superset==$SUPERSET_VERSION gunicorn $PYTHON_LDAP (about 2 minutes)"
pip_install() {
  "$venv/bin/python" -m pip install -q --progress-bar off "$@" \
    -c "$constraints" "apache-superset==$SUPERSET_VERSION" gunicorn "$AUTHLIB" "$PYTHON_LDAP"
}
if ! pip_install --only-binary :all: --no-binary pgsanity,wtforms-json,odfpy,python-ldap; then
  step "binary-only install failed; retrying with source builds allowed"
  pip_install
fi

step "checking the install"
"$venv/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("apache-superset", "flask", "flask-appbuilder", "werkzeug", "gunicorn", "authlib", "python-ldap"):
    print(f"   {name} {md.version(name)}")
import ldap  # noqa: F401  (the compiled module loads against this libldap)
EOF

echo "$want" >"$venv/.complete"
step "done"
