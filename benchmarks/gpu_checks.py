"""The checks that need a GPU host, in one run: what a lent GPU machine should be asked.

1. the sampler reads the GPUs (``python -m trainers.gpu --once --json``);
2. ``configs/dev.yaml`` trains to the end on the GPU;
3. a run stopped by SIGTERM and started again ends bitwise identical to one never stopped
   (every adapter tensor ``torch.equal``, the same loss curve).

Runs on a CPU too (slower, and without step 1's GPUs), which is how it is tried before a GPU
machine's minutes are spent. Prints one line per check; exits 1 when a check fails.

    python benchmarks/gpu_checks.py [--steps 300] [--work /tmp/gpu-checks]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainers.protocol.progress import dedupe_steps, read_lines  # noqa: E402

CONFIG = "configs/dev.yaml"


def trainer(output: Path, steps: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "trainers.lora", "--config", CONFIG,
        "--set", f"output_dir={output}", "--set", f"train.max_steps={steps}",
        "--set", f"checkpoint.every_steps={max(1, steps // 3)}", *extra,
    ]


def check_sampler() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "trainers.gpu", "--once", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        error = done.stderr.strip()[-200:]
        print(f"sampler                : FAILED exit {done.returncode}: {error}")
        return False
    sample = json.loads(done.stdout.splitlines()[-1])
    gpus = sample.get("gpus", [])
    names = ", ".join(f"{g.get('name')} {g.get('memory_total_mib')} MiB" for g in gpus) or "none"
    status = sample.get("gpu_status")
    print(f"sampler                : {len(gpus)} GPU(s): {names}; status {status}")
    return True


def straight_run(work: Path, steps: int) -> tuple[bool, Path]:
    output = work / "straight"
    started = time.monotonic()
    done = subprocess.run(trainer(output, steps), cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - started
    curve = curve_of(output)
    ok = done.returncode == 0 and len(curve) > 0 and curve[-1][0] == steps
    last = f"loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f}" if curve else "no metrics"
    print(f"dev.yaml, {steps} steps     : exit {done.returncode} in {took:.1f} s; {last}")
    if not ok:
        print(done.stderr[-2000:])
    return ok, output


def stopped_and_resumed(work: Path, steps: int, straight: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    output = work / "stopped"
    process = subprocess.Popen(
        trainer(output, steps),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    stop_at = steps // 2
    while process.poll() is None and max((s for s, _ in curve_of(output)), default=0) < stop_at:
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    took = time.monotonic() - sent
    stopped_at = max((s for s, _ in curve_of(output)), default=0)
    print(f"SIGTERM at step {stopped_at:<7}: exit {process.returncode} after {took:.3f} s")
    if process.returncode != 143:
        print(stderr[-2000:])
        return False
    done = subprocess.run(trainer(output, steps), cwd=ROOT, capture_output=True, text=True)
    adapter = "adapter/adapter_model.safetensors"
    left, right = load_file(straight / adapter), load_file(output / adapter)
    different = [n for n in left if n not in right or not torch.equal(left[n], right[n])]
    same_curve = curve_of(straight) == curve_of(output)
    print(
        f"resumed run            : exit {done.returncode}; {len(left) - len(different)}/{len(left)}"
        f" adapter tensors identical; loss curve {'identical' if same_curve else 'DIFFERENT'}"
    )
    return done.returncode == 0 and not different and same_curve


def curve_of(output: Path) -> list[tuple[int, float | None]]:
    path = output / "metrics.jsonl"
    if not path.exists():
        return []
    return [(line.step, line.loss) for line in dedupe_steps(read_lines(path))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gputui-gpu-checks"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    results = [check_sampler()]
    ok, straight = straight_run(args.work, args.steps)
    results.append(ok)
    if ok:
        results.append(stopped_and_resumed(args.work, args.steps, straight))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
