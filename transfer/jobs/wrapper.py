"""The POSIX shell scripts that run on the host: job wrapper, launcher, prober and stopper.

They are plain ``sh`` (dash, busybox, bash) so that a bare GPU host needs nothing installed. The
person's text (command, name, work folder, environment activation) reaches the host only as
files in the job folder or as single-quoted arguments that the host's shell unquotes exactly
once; no script ever pastes it into a command line of its own. Layout: ``protocol/jobdir.py``.
"""

from __future__ import annotations

#: Runs in the job's tmux pane (or under ``setsid nohup``): ``sh wrapper.sh JOB_DIR``.
#:
#: Stage one records the wrapper itself, starts stage two in a new session (so the command and
#: every child it forks share one process group that stop can signal, and the wrapper survives
#: that signal), shows the log in the pane while the job runs, and writes ``ended_at`` then
#: ``exit_code`` when the command ends. Stage two (``--run``) records ``pid`` and replaces itself
#: with the command, so the recorded PID and start time are those of the command.
WRAPPER_SCRIPT = r"""# gputui job wrapper: sh wrapper.sh JOB_DIR
# Runs the file `command` of the job folder exactly as it was written, in a process group of its
# own, appending its output unbuffered to `log`; see trainers/protocol/jobdir.py for the files.

boot_id() { cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown; }

# Start time of process $1 in clock ticks since boot (field 22 of /proc/PID/stat); the command
# name (field 2) may hold spaces and parentheses, so the fields are taken after the last ") ".
start_ticks() {
    gputui_stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    set -f
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

run_shell=sh
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
"""

#: ``sh -c PREPARE_SCRIPT prepare JOBS_ROOT JOB_ID WORKDIR``: creates the job folder (failing
#: with status 17 when the id is taken) and the work folder, and reports what the launch needs.
PREPARE_SCRIPT = r"""
root=$1; id=$2; workdir=$3
umask 077
mkdir -p "$root" || exit 1
mkdir "$root/$id" 2>/dev/null || exit 17
mkdir -p "$workdir" 2>/dev/null
if command -v tmux >/dev/null 2>&1; then echo "tmux yes"; else echo "tmux no"; fi
commit=$(cd "$workdir" 2>/dev/null && git rev-parse HEAD 2>/dev/null) && echo "commit $commit"
exit 0
"""

#: ``sh -c START_SCRIPT start DIR SESSION TMUX_SOCKET USE_TMUX [NAME CONTENT]…``: writes the
#: job's files verbatim (``meta.json`` last, by rename, so a listed job is a complete one), then
#: starts the wrapper detached: in a tmux session when asked (and there), else ``setsid nohup``.
START_SCRIPT = r"""
d=$1; session=$2; socket=$3; use_tmux=$4; shift 4
umask 077
while [ $# -ge 2 ]; do
    printf '%s' "$2" >"$d/$1" || exit 1
    shift 2
done
mv -f "$d/meta.json.tmp" "$d/meta.json" || exit 1
if [ "$use_tmux" = yes ] && command -v tmux >/dev/null 2>&1; then
    if [ -n "$socket" ]; then set -- -S "$socket"; else set --; fi
    # tmux hands its command to a shell: the folder is quoted for it, and holds no quote itself.
    exec tmux "$@" new-session -d -s "$session" -x 160 -y 48 "sh '$d/wrapper.sh' '$d'"
fi
if command -v setsid >/dev/null 2>&1; then
    setsid nohup sh "$d/wrapper.sh" "$d" </dev/null >/dev/null 2>&1 &
else
    nohup sh "$d/wrapper.sh" "$d" </dev/null >/dev/null 2>&1 &
fi
exit 0
"""

#: ``sh -c PROBE_SCRIPT probe JOBS_ROOT [JOB_ID…]``: prints the raw facts about the jobs (all
#: of them when no id is given) as ``key value`` lines, one ``@job ID`` line opening each job.
#: Shell builtins only inside the loop, so that a hundred old jobs cost no process each. The
#: process is looked up before the exit code, so a job that ends in between reads as ended.
PROBE_SCRIPT = r"""
root=$1; shift
readf() {
    v=
    IFS= read -r v 2>/dev/null <"$1" || [ -n "$v" ]
}
# Start ticks of a live process; a zombie (exited, not yet reaped) counts as gone.
ticks_of() {
    readf "/proc/$1/stat" || return 1
    set -f
    set -- ${v##*) }
    set +f
    [ "$1" != Z ] || return 1
    t=${20:-0}
}
readf /proc/sys/kernel/random/boot_id || v=unknown
printf 'boot %s\n' "$v"
printf 'now %s\n' "$(date +%s)"
cd "$root" 2>/dev/null || exit 0
[ $# -eq 0 ] && set -- *
for id in "$@"; do
    readf "$id/meta.json" || continue
    printf '@job %s\n' "$id"
    printf 'meta %s\n' "$v"
    for f in wrapper pid; do
        readf "$id/$f" || continue
        printf '%s %s\n' "$f" "$v"
        p=${v%% *}
        case $p in
            ''|*[!0-9]*) ;;
            *) ticks_of "$p" && printf '%s_proc %s\n' "$f" "$t" ;;
        esac
    done
    for f in exit_code ended_at started_at; do
        readf "$id/$f" && printf '%s %s\n' "$f" "$v"
    done
    if [ -f "$id/stop" ]; then
        s=
        while IFS= read -r l; do s="$s $l"; done <"$id/stop"
        printf 'stop%s\n' "$s"
    fi
    [ -f "$id/wrapper" ] || printf 'meta_mtime %s\n' "$(stat -c %Y "$id/meta.json")"
done
exit 0
"""

#: ``sh -c STOP_SCRIPT stop DIR GRACE_TENTHS``, run detached on the host so that the SIGKILL
#: after the grace period happens even when the laptop has gone. ``GRACE_TENTHS`` 0 sends SIGKILL
#: at once. Appends ``TERM <time>`` / ``KILL <time>`` lines to ``stop`` for each signal sent.
STOP_SCRIPT = r"""
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
set -- $(head -n 1 "$d/pid")
set +f
[ $# -eq 4 ] || exit 0
pid=$1; pgid=$2; rec_boot=$3; rec_ticks=$4
[ "$rec_boot" = "$boot" ] || exit 0
s=$(cat "/proc/$pid/stat" 2>/dev/null) || exit 0
set -f
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
"""
