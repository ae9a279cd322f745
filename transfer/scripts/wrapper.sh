# gputui job wrapper: sh wrapper.sh JOB_DIR
# shellcheck shell=sh
# Runs the file `command` of the job folder exactly as it was written, in a process group of its
# own, appending its output unbuffered to `log`; see trainers/protocol/jobdir.py for the files.
# Runs in the job's tmux pane (or under `setsid nohup`). Stage one records the wrapper itself,
# starts stage two in a new session (so the command and every child it forks share one process
# group that stop can signal, and the wrapper survives that signal), shows the log in the pane
# while the job runs, and writes `ended_at` then `exit_code` when the command ends. Stage two
# (`--run`) records `pid` and replaces itself with the command, so the recorded PID and start
# time are those of the command.

boot_id() { cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown; }

# Start time of process $1 in clock ticks since boot (field 22 of /proc/PID/stat); the command
# name (field 2) may hold spaces and parentheses, so the fields are taken after the last ") ".
start_ticks() {
    gputui_stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    set -f
    # shellcheck disable=SC2086 # split on purpose (globbing is off): the fields of /proc/PID/stat
    set -- ${gputui_stat##*) }
    set +f
    echo "${20:-0}"
}

if [ "${1-}" = --run ]; then
    # Stage two, in the job's own session: record this process, then become the command.
    d=$2; run_shell=$3; shift 3
    printf '%s %s %s %s\n' "$$" "$$" "$(boot_id)" "$(start_ticks $$)" >"$d/pid.tmp" &&
        mv -f "$d/pid.tmp" "$d/pid"
    if [ -s "$d/env" ]; then
        # shellcheck disable=SC2016 # expanded by the inner shell, from its environment
        exec "$@" "$run_shell" -c '. "$GPUTUI_JOB_DIR/env" || {
            echo "gputui: the environment activation failed" >&2; exit 126; }
            exec "$0" "$GPUTUI_JOB_DIR/command"' "$run_shell"
    fi
    exec "$@" "$run_shell" "$d/command"
fi

d=$1
cd "$d" || exit 111
log=$d/log
: >>"$log" || exit 111
# A closing tmux session sends SIGHUP: survive it, so the exit code is still written.
trap 'gputui_hup=1' HUP

put() {
    printf '%s\n' "$2" >"$d/$1.tmp" && mv -f "$d/$1.tmp" "$d/$1"
}
finish() {
    put ended_at "$(date +%s)"
    put exit_code "$1"
}

put wrapper "$$ $(boot_id) $(start_ticks $$)"
if [ -e "$d/stop" ]; then
    finish 143
    exit 0
fi
if ! command -v setsid >/dev/null 2>&1; then
    echo "gputui: setsid (util-linux) is missing on this host" >>"$log"
    finish 127
    exit 0
fi
workdir=$(cat "$d/workdir")
if ! cd "$workdir" 2>/dev/null; then
    printf 'gputui: cannot enter the work folder %s\n' "$workdir" >>"$log"
    finish 126
    exit 0
fi

run_shell='sh'
command -v bash >/dev/null 2>&1 && run_shell=bash
# `&` makes sh ignore SIGINT and SIGQUIT in the child; give the command the default handlers.
if env --default-signal=INT,QUIT true 2>/dev/null; then
    set -- env --default-signal=INT,QUIT
elif command -v python3 >/dev/null 2>&1; then
    set -- python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])'
else
    set --
fi
command -v stdbuf >/dev/null 2>&1 && set -- "$@" stdbuf -oL -eL
PYTHONUNBUFFERED=1
GPUTUI_JOB_DIR=$d
GPUTUI_JOB_ID=${d##*/}
export PYTHONUNBUFFERED GPUTUI_JOB_DIR GPUTUI_JOB_ID

put started_at "$(date +%s)"
setsid sh "$d/wrapper.sh" --run "$d" "$run_shell" "$@" </dev/null >>"$log" 2>&1 &
child=$!

tailer=
if [ -t 1 ]; then
    tail -n +1 -f "$log" &
    tailer=$!
fi
while :; do
    wait "$child"
    code=$?
    # A trapped signal interrupts `wait`; only a reaped child ends the loop.
    kill -s 0 "$child" 2>/dev/null || break
done
# A stop signals the whole process group, and the shell that ran the command dies of SIGTERM at
# once while the command (a trainer committing its checkpoint) is still at work: the job ends
# with the last process of its group (the stopper SIGKILLs the group after the grace period).
if [ -e "$d/stop" ]; then
    while kill -s 0 -- "-$child" 2>/dev/null; do sleep 0.1; done
fi
finish "$code"
if [ -n "$tailer" ]; then
    sleep 0.3
    kill "$tailer" 2>/dev/null
    printf '\n[gputui] the job ended with exit code %s\n' "$code"
fi
exit 0
