"""The CPU speed-ups keep the maths: dropout statistics, fused RMSNorm, the heap setting."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn
from trainer_helpers import ROOT

from trainers.config import LlamaArch
from trainers.dropout import WordDropout, use_word_dropout
from trainers.rmsnorm import fuse_rmsnorms
from trainers.tiny import build_llama


def test_word_dropout_keeps_the_right_share_from_every_bit_lane() -> None:
    torch.manual_seed(0)
    layer = WordDropout(0.25)
    ones = torch.ones(400_003)
    out = layer(ones)
    kept = out != 0
    assert layer.p == 0.25 and out[kept].unique().tolist() == [pytest.approx(1 / 0.75)]
    # Each of the four 16-bit lanes of a 64-bit draw must be uniform on its own.
    for lane in range(4):
        share = kept[lane::4].float().mean().item()
        assert share == pytest.approx(0.75, abs=0.01)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)


def test_word_dropout_is_seeded_and_off_in_eval() -> None:
    layer = WordDropout(0.1)
    x = torch.randn(3, 50)
    torch.manual_seed(3)
    first = layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(layer(x), first)
    layer.eval()
    assert layer(x) is x
    assert WordDropout(0.05).p == round(0.05 * 65536) / 65536
    with pytest.raises(ValueError):
        WordDropout(1.0)


def test_word_dropout_replaces_only_lora_dropouts() -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = build_llama(LlamaArch(hidden_size=32, intermediate_size=64, num_layers=1), 300, 32)
    config = LoraConfig(r=4, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
    wrapped = get_peft_model(model, config)
    assert use_word_dropout(wrapped) == 2
    kinds = [type(m).__name__ for m in wrapped.modules() if isinstance(m, nn.Module)]
    assert kinds.count("WordDropout") == 2 and "Dropout" not in kinds
    ids = torch.randint(0, 300, (2, 8))
    wrapped(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if "lora_A" in n)


def test_fused_rmsnorm_matches_the_model() -> None:
    torch.manual_seed(0)
    model = build_llama(LlamaArch(hidden_size=32, intermediate_size=64), 300, 32)
    for name, weight in model.named_parameters():
        if "norm" in name:
            weight.data.uniform_(0.5, 1.5)  # not the all-ones of a fresh model
    ids = torch.randint(0, 300, (2, 12))
    expected = model(input_ids=ids).logits
    assert fuse_rmsnorms(model) == 2 * 2 + 1
    assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
    half: Any = torch.nn.Module.to(model, torch.bfloat16)
    assert torch.allclose(half(input_ids=ids).logits.float(), expected, atol=0.05, rtol=0.05)


def test_heap_setting_stops_page_faults() -> None:
    """50 steps that each allocate and free ~34 MB of activations. Untuned glibc usually hands
    the memory back every step (about 420,000 faults here; not always, it depends on the heap
    layout); tuned, the steady state touches no fresh pages."""
    code = """
import resource, torch
from trainers.allocator import keep_freed_memory
assert keep_freed_memory()
torch.set_num_threads(1)
x = torch.randn(8, 256, 176)
def step():
    kept = [x * i for i in range(24)]  # activations alive until the step ends, like autograd's
    return sum(t.sum() for t in kept)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 5000
