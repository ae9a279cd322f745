"""Chat data: assistant-only masks, packing without padding, the memory-mapped cache, the cursor."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trainer_helpers import CHAT_DATA

from trainers import data as data_module
from trainers.data import (
    PREDICT,
    REAL,
    BatchSampler,
    DataCursor,
    DataError,
    encode_conversation,
    prepare_data,
    read_conversations,
)
from trainers.tiny import cached_chat_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return cached_chat_tokenizer(CHAT_DATA, 400, tmp_path_factory.mktemp("tok"))


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "2 + 2 = 4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "3 + 3 = 6."},
]


def write_jsonl(path: Path, conversations: list[list[dict[str, str]]]) -> Path:
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations))
    return path


def test_only_assistant_turns_are_predicted(tokenizer: Any) -> None:
    ids, predict = encode_conversation(tokenizer, CONVERSATION)
    assert len(ids) == len(predict)
    learned = tokenizer.decode([t for t, p in zip(ids, predict, strict=True) if p])
    assert learned == "2 + 2 = 4.<|im_end|>\n3 + 3 = 6.<|im_end|>\n"
    prompt = tokenizer.decode([t for t, p in zip(ids, predict, strict=True) if not p])
    assert "What is 2 + 2?" in prompt and "You are terse." in prompt
    assert "= 4" not in prompt
    assert tokenizer.decode(ids) == tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_packing_fills_rows_without_padding(tokenizer: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", [CONVERSATION] * 40)
    prepared = prepare_data(path, tokenizer, 32, True, 0.0, tmp_path / "cache")
    store = prepared.train
    assert prepared.eval is None
    ids, predict = encode_conversation(tokenizer, CONVERSATION)
    stream = ids * 40
    assert store.rows == (len(stream) - 1) // 32
    tokens, flags = store.batch(np.arange(store.rows))
    assert tokens.shape == (store.rows, 33)
    assert np.all(flags & REAL)  # not one padding position
    for row in range(store.rows):
        assert tokens[row].tolist() == stream[row * 32 : row * 32 + 33]
        assert (flags[row] & PREDICT).tolist() == (predict * 40)[row * 32 : row * 32 + 33]
    # Neighbouring rows share one token, so every token after the first is predicted once.
    assert tokens[0, -1] == tokens[1, 0]


def test_without_packing_rows_are_padded_and_masked(tokenizer: Any, tmp_path: Path) -> None:
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    path = write_jsonl(tmp_path / "chat.jsonl", [short, CONVERSATION])
    prepared = prepare_data(path, tokenizer, 48, False, 0.0, tmp_path / "cache")
    tokens, flags = prepared.train.batch(np.array([0, 1]))
    ids, predict = encode_conversation(tokenizer, short)
    assert tokens[0, : len(ids)].tolist() == ids
    assert np.all(tokens[0, len(ids) :] == tokenizer.pad_token_id)
    assert np.all(flags[0, len(ids) :] == 0)
    assert (flags[0, : len(ids)] & PREDICT).tolist() == predict


def test_cache_is_written_once_and_memory_mapped(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = prepare_data(CHAT_DATA, tokenizer, 64, True, 0.05, cache)
    assert isinstance(first.train.tokens, np.memmap)
    assert first.eval is not None and first.eval.rows > 0

    def must_not_rebuild(*args: object) -> None:
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(data_module, "_write_cache", must_not_rebuild)
    again = prepare_data(CHAT_DATA, tokenizer, 64, True, 0.05, cache)
    assert again.folder == first.folder
    assert np.array_equal(again.train.tokens, first.train.tokens)
    with pytest.raises(AssertionError, match="rebuilt"):
        prepare_data(CHAT_DATA, tokenizer, 32, True, 0.05, cache)  # other settings, other key
    assert not list(cache.glob("*.tmp-*"))


def test_held_out_conversations_do_not_train(tokenizer: Any, tmp_path: Path) -> None:
    conversations = [
        [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}."}]
        for i in range(20)
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", conversations)
    prepared = prepare_data(path, tokenizer, 32, False, 0.25, tmp_path / "cache")
    assert prepared.eval is not None
    assert (prepared.train.rows, prepared.eval.rows) == (15, 5)
    train_text = tokenizer.decode(prepared.train.tokens.tolist())
    eval_text = tokenizer.decode(prepared.eval.tokens.tolist())
    held = {int(number) for number in re.findall(r"A(\d+)\.", eval_text)}
    trained = {int(number) for number in re.findall(r"A(\d+)\.", train_text)}
    assert len(held) == 5 and len(trained) == 15
    assert held.isdisjoint(trained)


def test_sampler_resumes_from_its_cursor() -> None:
    straight = BatchSampler(10, 3, DataCursor(seed=7))
    expected = [straight.next().tolist() for _ in range(9)]
    first = BatchSampler(10, 3, DataCursor(seed=7))
    seen = [first.next().tolist() for _ in range(4)]
    saved = first.cursor.to_dict()
    resumed = BatchSampler(10, 3, DataCursor.from_dict(saved))
    seen += [resumed.next().tolist() for _ in range(5)]
    assert seen == expected
    # Three batches per epoch, each epoch a new order, no row twice within an epoch.
    first_epoch = [row for batch in expected[0:3] for row in batch]
    assert len(first_epoch) == len(set(first_epoch)) == 9
    assert expected[0:3] != expected[3:6]
    assert resumed.cursor.epoch == 2


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"text": "hi"}', 'expected {"messages": [...]}'),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "needs a role"),
        ('{"messages": [{"role": "user", "content": "only a question"}]}', "no assistant"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "chat.jsonl"
    good = json.dumps({"messages": CONVERSATION})
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(DataError) as caught:
        read_conversations(path)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert problem in str(caught.value)


def test_too_little_data_is_one_clear_error(tokenizer: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", [CONVERSATION])
    with pytest.raises(DataError, match="too little data for one row of seq_len 4096"):
        prepare_data(path, tokenizer, 4096, True, 0.0, tmp_path / "cache")
