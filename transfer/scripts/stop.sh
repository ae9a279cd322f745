# gputui job stopper: sh -c SCRIPT stop JOB_DIR GRACE_TENTHS
# shellcheck shell=sh
# Runs detached on the host so that the SIGKILL after the grace period happens even when the
# laptop has gone. GRACE_TENTHS 0 sends SIGKILL at once. Appends `TERM <time>` / `KILL <time>`
# lines to `stop` for each signal sent.
d=$1; tenths=$2
boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
note() { echo "$1 $(date +%s)" >>"$d/stop"; }

[ -f "$d/exit_code" ] && exit 0
requested=
if [ ! -f "$d/pid" ]; then
    # Still starting: ask the wrapper not to start it, then catch it if it already has.
    note TERM
    requested=yes
    i=0
    while [ ! -f "$d/pid" ] && [ ! -f "$d/exit_code" ] && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    [ -f "$d/pid" ] || exit 0
fi
set -f
# shellcheck disable=SC2046 # split on purpose (globbing is off): pid pgid boot ticks
set -- $(head -n 1 "$d/pid")
set +f
[ $# -eq 4 ] || exit 0
pid=$1; pgid=$2; rec_boot=$3; rec_ticks=$4
[ "$rec_boot" = "$boot" ] || exit 0
s=$(cat "/proc/$pid/stat" 2>/dev/null) || exit 0
set -f
# shellcheck disable=SC2086 # split on purpose (globbing is off): the fields of /proc/PID/stat
set -- ${s##*) }
set +f
[ "${20:-}" = "$rec_ticks" ] || exit 0

if [ "$tenths" -le 0 ]; then
    note KILL
    kill -s KILL -- "-$pgid" 2>/dev/null
    exit 0
fi
[ -n "$requested" ] || note TERM
kill -s TERM -- "-$pgid" 2>/dev/null
i=0
while kill -s 0 -- "-$pgid" 2>/dev/null && [ $i -lt "$tenths" ]; do
    sleep 0.1; i=$((i + 1))
done
if kill -s 0 -- "-$pgid" 2>/dev/null; then
    note KILL
    kill -s KILL -- "-$pgid" 2>/dev/null
fi
exit 0
