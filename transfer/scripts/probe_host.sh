# gputui host probe: what a host offers (see transfer/probe.py), as `key=value` lines.
# shellcheck shell=sh
# A prelude sets wd (the work folder) and puts the nvidia-smi query in "$@". Changes nothing on
# the host; nvidia-smi runs only when it exists, with a time limit, since a broken driver can
# hang it.
# shellcheck disable=SC2154 # wd is set by the prelude
# shellcheck disable=SC1091 # the host's own file, read there
os=$( (. /etc/os-release && printf '%s' "$PRETTY_NAME") 2>/dev/null )
[ -n "$os" ] || os=$(uname -sr 2>/dev/null)
printf 'os=%s\n' "$os"
if command -v python3 >/dev/null 2>&1; then
  version=$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null)
  printf 'python=%s\n' "$version"
fi
for tool in tmux rsync nvidia-smi; do
  if command -v "$tool" >/dev/null 2>&1; then printf 'has=%s\n' "$tool"; fi
done
if command -v nvidia-smi >/dev/null 2>&1; then
  if command -v timeout >/dev/null 2>&1; then set -- timeout 20 "$@"; fi
  if gpus=$("$@" 2>/dev/null); then
    printf '%s\n' "$gpus" | sed -n 's/^./gpu=&/p'
  fi
fi
printf 'workdir=%s\n' "$wd"
d=$wd
while [ ! -e "$d" ] && [ "$d" != / ] && [ "$d" != . ]; do d=$(dirname -- "$d"); done
df -Pk -- "$d" 2>/dev/null | awk 'NR == 2 { print "disk_free_kib=" $4 }'
exit 0
