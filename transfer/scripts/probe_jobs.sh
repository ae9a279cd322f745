# gputui job prober: sh -c SCRIPT probe JOBS_ROOT [JOB_ID...]
# shellcheck shell=sh
# Prints the raw facts about the jobs (all of them when no id is given) as `key value` lines, one
# `@job ID` line opening each job. Shell builtins only inside the loop, so that a hundred old jobs
# cost no process each. The process is looked up before the exit code, so a job that ends in
# between reads as ended.
root=$1; shift
readf() {
    v=
    IFS= read -r v 2>/dev/null <"$1" || [ -n "$v" ]
}
# Start ticks of a live process; a zombie (exited, not yet reaped) counts as gone.
ticks_of() {
    readf "/proc/$1/stat" || return 1
    set -f
    # shellcheck disable=SC2086 # split on purpose (globbing is off): the fields of /proc/PID/stat
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
