#!/usr/bin/env bash
# Brings up a real single-node SLURM cluster (Debian's slurm-wlm + munge) for
# the end-to-end SLURM test, following ../shared/notes/slurm-local.md.
# Usage: tests/slurm/start-cluster.sh DIR   (prints `export SLURM_CONF=...`)
# Exits non-zero, saying why, when SLURM cannot start here; callers then
# let the SLURM test skip visibly.
set -euo pipefail
dir=${1:?usage: start-cluster.sh DIR}
mkdir -p "$dir"/{spool/ctld,spool/d,run,log}
dir=$(cd "$dir" && pwd)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge) \
      >"$dir/log/apt.log" 2>&1 || { echo "apt-get install slurm-wlm munge failed (see $dir/log/apt.log)" >&2; exit 1; }
  else
    echo "slurmctld/munged not installed and cannot apt-get install them (not root or no apt)" >&2
    exit 1
  fi
fi

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -f /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key" >&2; exit 1; }
  runuser -u munge -- /usr/sbin/munged
  sleep 1
  munge -n | unmunge >/dev/null || { echo "munge does not work" >&2; exit 1; }
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
cat >"$dir/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 30); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "the SLURM node did not become idle; see $dir/log" >&2
exit 1
