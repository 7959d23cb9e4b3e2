# The virtual environment of scripts/test and scripts/demo, with the tested versions.
# Sourced by both: venv_install makes $venv (RUNYARD_VENV, default .venv) if missing, installs
# requirements.lock into it, then Runyard itself (editable, no dependencies). It does so again
# only when requirements.lock or pyproject.toml changed since (a stamp in the venv).

venv=${RUNYARD_VENV:-.venv}

venv_install() {
    local stamp="$venv/.runyard-lock" want
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating the virtual environment $venv"
        python3 -m venv "$venv"
    fi
    want=$(cat requirements.lock pyproject.toml | sha256sum)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "== installing the locked versions (requirements.lock) and runyard into $venv"
    rm -f "$stamp"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.lock
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" >"$stamp"
}
