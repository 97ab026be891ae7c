# Python tools the checks use, pinned, in a project-local virtualenv (.venv-tools, git-ignored).
# Sourced by infra/scripts/fuzz, client-check and check-openapi.

TOOL_REQUIREMENTS=(
  schemathesis==4.32.5
  openapi-python-client==0.29.1
  openapi-spec-validator==0.9.0
  ruff==0.17.6
  python-dateutil==4.0.0
)

# Creates or updates the virtualenv and prints its path.
tool_venv() {
  local root venv stamp
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  venv="$root/.venv-tools"
  stamp="$venv/.requirements"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "${TOOL_REQUIREMENTS[*]}" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${TOOL_REQUIREMENTS[@]}" >&2
    echo "${TOOL_REQUIREMENTS[*]}" >"$stamp"
  fi
  echo "$venv"
}
