# Sourced by bin/run and bin/test. Puts the project and its dependencies in .venv, and
# reinstalls only when pyproject.toml (or the wanted extras) changed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11, 3.12 or 3.13 is needed (set PYTHON=/path/to/python)." >&2
  return 1
}

# apt_install PACKAGE...: Debian packages, as root or through sudo.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: install $* with your package manager." >&2
    return 1
  fi
  # Wait for another apt (an unattended upgrade, a parallel setup) instead of failing at once.
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    "$@" >/dev/null
}

# mysqlclient compiles against MariaDB's client headers; install them when they are missing.
ensure_mysql_build_deps() {
  if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
    return 0
  fi
  echo "== Installing libmariadb-dev and pkg-config (needed to build mysqlclient)"
  apt_install libmariadb-dev pkg-config
}

# ensure_apt_package COMMAND PACKAGE: install PACKAGE when COMMAND is not on the PATH.
ensure_apt_package() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0  # nginx and other daemons, off a non-root user's PATH
  echo "== Installing $2 (provides $1)"
  apt_install "$2"
}

# setup_venv EXTRAS: e.g. setup_venv "mysql,test"; an empty string installs the base only.
setup_venv() {
  local extras="$1" python stamp spec
  python="$(find_python)"
  if [ ! -x .venv/bin/python ]; then
    echo "== Creating .venv with $python"
    "$python" -m venv .venv
  fi
  stamp=".venv/.installed-$( (cat pyproject.toml; echo "$extras") | sha1sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    echo "== Installing dependencies ($spec)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
    touch "$stamp"  # one per pyproject.toml and extras: bin/test and bin/bench keep theirs
  fi
}

# compile_messages: the translations' .mo files from their .po sources, when a .po is newer
# and gettext's msgfmt is on the machine (the compiled .mo files are in the repository too).
compile_messages() {
  command -v msgfmt >/dev/null 2>&1 || return 0
  local po mo
  for po in locale/*/LC_MESSAGES/*.po; do
    [ -e "$po" ] || continue
    mo="${po%.po}.mo"
    if [ ! -e "$mo" ] || [ "$po" -nt "$mo" ]; then
      msgfmt --check-format -o "$mo" "$po"
    fi
  done
}
