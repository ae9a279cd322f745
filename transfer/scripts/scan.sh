# gputui file listing: prints the NUL-separated scan of the folder $T (see transfer/sync/scan.py).
# shellcheck shell=sh
# A prelude sets T (the root), gputui_tools (the tools to report) and gputui_py (the python3
# fallback for a find without -printf), and puts the names to list in "$@" (none: all of them).
# shellcheck disable=SC2154 # T, gputui_tools and gputui_py are set by the prelude
printf 'gputui-scan\0'
t=''
# shellcheck disable=SC2086 # a list of command names, split on purpose
for c in $gputui_tools; do command -v "$c" >/dev/null 2>&1 && t="$t $c"; done
printf '%s\0' "$t"
if [ -d "$T" ]; then k=d; elif [ -L "$T" ]; then k=l; elif [ -f "$T" ]; then k=f;
elif [ -e "$T" ]; then k=other; else k=missing; fi
printf '%s\0%s\0' "$k" "$T"
[ "$k" = d ] || exit 0
if find "$T" -maxdepth 0 -printf '' >/dev/null 2>&1; then
    if [ $# -eq 0 ]; then
        exec find -H "$T" -mindepth 1 \( -type f -o -type d -o -type l \) \
            -printf '%y %s %T@ %m %P\0%l\0'
    fi
    # The names become `-name N1 -o -name N2 ...`: each turn appends one and drops one.
    for name do set -- "$@" -o -name "$name"; shift; done
    shift
    exec find "$T" -mindepth 1 -maxdepth 1 \( "$@" \) \( -type f -o -type d -o -type l \) \
        -printf '%y %s %T@ %m %P\0%l\0'
elif command -v python3 >/dev/null 2>&1; then
    exec python3 -c "$gputui_py" "$T" "$@"
else
    echo 'neither GNU find nor python3 on the host: cannot list files' >&2; exit 3
fi
