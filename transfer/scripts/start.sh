# gputui job starter: sh -c SCRIPT start DIR SESSION TMUX_SOCKET USE_TMUX [NAME CONTENT]...
# shellcheck shell=sh
# Writes the job's files verbatim (`meta.json` last, by rename, so a listed job is a complete
# one), then starts the wrapper detached: in a tmux session when asked (and there), else under
# `setsid nohup`.
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
