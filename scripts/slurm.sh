# A throwaway single-node Slurm cluster for the tests (Debian's slurm-wlm and munge): one
# node named after this machine with its CPUs and memory, every file in a temporary folder,
# every daemon run as root (so this needs root). Sourced by scripts/test: slurm_start exports
# SLURM_CONF (which the Slurm commands read) and RUNYARD_TEST_SLURM=1, slurm_stop ends the
# daemons and deletes the folder. Also by hand:  source scripts/slurm.sh && slurm_start
#
# No cgroups (containers seldom allow them): processes are tracked through /proc
# (proctrack/linuxproc), tasks are not bound (task/none), and there is no accounting
# (slurmdbd): job states come from slurmctld (scontrol, squeue), as Runyard reads them.

slurm_start() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        echo "Slurm is not installed; installing slurm-wlm and munge from Debian's packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null ||
            { apt-get update -q >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
    fi
    SLURMTEST_DIR=$(mktemp -d /tmp/runyard-slurmtest-XXXXXX)
    chmod 755 "$SLURMTEST_DIR"  # the Slurm commands of any user read slurm.conf here
    local dir=$SLURMTEST_DIR node
    node=$(hostname -s)
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"

    # munge: a key of its own and a socket of its own (a machine's own munged is not touched).
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"

    local ctld_port=$(( 20000 + RANDOM % 20000 ))
    local slurmd_port=$(( ctld_port + 1 ))
    # The node as slurmd finds it (CPUs, sockets, cores, threads, memory).
    local node_line
    node_line=$(slurmd -C | grep "^NodeName=")
    cat >"$dir/slurm.conf" <<EOF
ClusterName=runyard-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=300
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$dir/slurm.conf"
    export SLURM_CONF=$dir/slurm.conf SLURMTEST_DIR
    slurmctld -c   # -c: no state from an earlier cluster
    slurmd -N "$node"

    local i state
    for i in $(seq 1 120); do
        state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
        if [ "$state" = idle ]; then
            export RUNYARD_TEST_SLURM=1
            echo "Slurm running (node $node idle after $(( (i - 1) / 2 )) s): SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.5
    done
    echo "Slurm did not start: node $node is '${state:-unknown}'. Logs in $dir:" >&2
    tail -n 20 "$dir"/*.log "$dir"/munge/munged.log >&2 || true
    return 1
}

slurm_stop() {
    local dir=${SLURMTEST_DIR:-} pidfile
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then return 0; fi
    for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    # Wait (a little) for them to go before deleting their folder.
    for _ in $(seq 1 20); do
        local alive=0
        for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
            [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.25
    done
    rm -rf "$dir"
    unset SLURMTEST_DIR
}
