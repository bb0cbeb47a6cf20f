#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on 127.0.0.1 for the launcher tests (Debian's `slurm-wlm` and `munge`).
#   .ci/slurm.sh start DIR   write DIR/slurm.conf, start munged, slurmctld and slurmd on free ports,
#                            wait until a job runs, print the path of slurm.conf (SLURM_CONF for clients)
#   .ci/slurm.sh stop DIR    stop them
# Everything (key, socket, state, spool, logs) lives under DIR; nothing under /etc is read or changed.
# No cgroups: processes are tracked through /proc (proctrack/linuxproc), tasks are not confined
# (task/none), so it runs in an unprivileged container. Run as root (slurmd starts jobs as their user).
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?state folder}
for exe in munged mungekey slurmctld slurmd sinfo srun; do
  if ! command -v "$exe" >/dev/null && [ ! -x "/usr/sbin/$exe" ]; then
    echo "slurm.sh: $exe not found (apt-get install -y slurm-wlm munge)" >&2
    exit 1
  fi
done
export PATH=$PATH:/usr/sbin

stop() {
  for daemon in slurmd slurmctld munged; do
    pid=$(cat "$dir/$daemon.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do  # until it is gone (or a zombie its parent has not reaped yet)
      state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -z "$state" ] || [ "$state" = Z ] && break
      sleep 0.1
    done
    rm -f "$dir/$daemon.pid"
  done
}

fail() {  # the daemons' logs, then the reason (the last line, which the tests quote)
  for log in "$dir"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }; done
  stop
  echo "slurm.sh: $1" >&2
  exit 1
}

case $cmd in
start)
  [ "$(id -u)" = 0 ] || { echo "slurm.sh: must run as root (slurmd starts jobs as their user)" >&2; exit 1; }
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  chmod 755 "$dir"
  chmod 700 "$dir/munge"
  free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  ctld_port=$(free_port) slurmd_port=$(free_port)
  cpus=$(nproc)
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null || fail "mungekey failed"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" \
    || fail "munged did not start"
  cat > "$dir/slurm.conf" <<EOF
ClusterName=segkd-ci
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=2
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" -L "$dir/slurmctld.log" || fail "slurmctld did not start"
  slurmd -f "$SLURM_CONF" -N localhost -L "$dir/slurmd.log" || fail "slurmd did not start"
  ready=
  for _ in $(seq 120); do
    if [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]; then ready=1; break; fi
    sleep 0.5
  done
  [ -n "$ready" ] || fail "the node did not become idle in 60 s (sinfo: $(sinfo -h 2>&1 | tail -1))"
  timeout 60 srun -N1 -n1 -t 1 true >/dev/null 2>"$dir/srun.err" \
    || fail "a test job did not run: $(tail -1 "$dir/srun.err")"
  echo "$SLURM_CONF"
  ;;
stop)
  stop
  ;;
esac
