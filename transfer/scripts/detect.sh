# gputui telemetry detection: which source a host can give (see transfer/telemetry/source.py).
# shellcheck shell=sh
# The interpreters to try, best first, are "$@" (set by a prelude).
echo "@hostname $(uname -n 2>/dev/null)"
for py do
    if command -v "$py" >/dev/null 2>&1 &&
        "$py" -c 'import trainers.gpu, psutil' >/dev/null 2>&1; then
        echo "@sampler $(command -v "$py")"
        "$py" -c 'import pynvml' >/dev/null 2>&1 && echo "@pynvml yes"
        break
    fi
done
if command -v nvidia-smi >/dev/null 2>&1; then
    gputui_out=$(nvidia-smi -L 2>&1)
    echo "@smi $?"
    printf '%s\n' "$gputui_out" | sed 's/^/@smi-out /'
else
    echo "@smi 127"
fi
