# gputui job folder maker: sh -c SCRIPT prepare JOBS_ROOT JOB_ID WORKDIR
# shellcheck shell=sh
# Creates the job folder (failing with status 17 when the id is taken) and the work folder, and
# reports what the launch needs.
root=$1; id=$2; workdir=$3
umask 077
mkdir -p "$root" || exit 1
mkdir "$root/$id" 2>/dev/null || exit 17
mkdir -p "$workdir" 2>/dev/null
if command -v tmux >/dev/null 2>&1; then echo "tmux yes"; else echo "tmux no"; fi
commit=$(cd "$workdir" 2>/dev/null && git rev-parse HEAD 2>/dev/null) && echo "commit $commit"
exit 0
