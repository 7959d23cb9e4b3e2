# A throwaway PostgreSQL cluster for the tests, from the machine's PostgreSQL binaries.
# Sourced by scripts/test: postgres_start exports RUNYARD_TEST_DATABASE_URL, postgres_stop ends it.

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

postgres_start() {
    local bin
    if ! bin=$(pg_bin); then
        echo "PostgreSQL is not installed; installing it from Debian's packages"
        apt-get install -y -q postgresql >/dev/null
        bin=$(pg_bin)
    fi
    PGTEST_DIR=$(mktemp -d /tmp/runyard-pgtest-XXXXXX)
    chmod 755 "$PGTEST_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$PGTEST_DIR"
    local port=$(( 20000 + RANDOM % 20000 ))
    as_pg_owner "'$bin/initdb' -D '$PGTEST_DIR/data' -U postgres --auth=trust -E UTF8 >/dev/null"
    as_pg_owner "'$bin/pg_ctl' -D '$PGTEST_DIR/data' -l '$PGTEST_DIR/log' -w \
        -o \"-p $port -k $PGTEST_DIR -c listen_addresses='' -c fsync=off -c max_connections=200\" start >/dev/null"
    export RUNYARD_TEST_DATABASE_URL="postgresql://postgres@/postgres?host=$PGTEST_DIR&port=$port"
    export PGTEST_BIN=$bin PGTEST_DIR
    echo "PostgreSQL running: $RUNYARD_TEST_DATABASE_URL"
}

postgres_stop() {
    if [ -n "${PGTEST_DIR:-}" ] && [ -d "$PGTEST_DIR/data" ]; then
        as_pg_owner "'$PGTEST_BIN/pg_ctl' -D '$PGTEST_DIR/data' -m immediate stop >/dev/null" || true
        rm -rf "$PGTEST_DIR"
    fi
}
