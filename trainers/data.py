"""Chat JSONL to fixed-length training rows in a memory-mapped cache, and a resumable cursor.

Each line of the input is ``{"messages": [{"role": ..., "content": ...}, ...]}``. A conversation is
rendered with the tokenizer's chat template and tokenized once; only the tokens of assistant turns
(their text and the template's end-of-turn marker) are trained on, found by rendering the
conversation prefix by prefix, so any template that renders a conversation as the concatenation of
its prefixes works without ``{% generation %}`` markers.

With packing, all conversations of a split become one token stream cut into rows of ``seq_len + 1``
tokens that overlap by one (the last token of a row is the first of the next), so no position is
padding. Without packing, each conversation is one row, cut or padded to ``seq_len + 1``. Two flat
files hold a split: ``*.tokens`` (int32 ids) and ``*.flags`` (uint8: bit 0 = predict this token,
bit 1 = real token, not padding). They live under a folder named by a hash of the data, the
tokenizer and the settings, are written to a temporary folder and renamed into place, and are
opened with ``numpy.memmap`` so a resumed run neither re-tokenizes nor holds the data in memory.

The cursor is ``(seed, epoch, position)``: the order of rows in an epoch is a pure function of the
seed and the epoch, so resuming means jumping to ``position``, not replaying the batches before it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PREDICT = 1
REAL = 2
ROLES = ("system", "user", "assistant", "tool")
CACHE_VERSION = "rows-v1"


class DataError(Exception):
    """Data that cannot be trained on; the message names the file and line."""


Message = dict[str, str]


def require_data_file(path: Path) -> None:
    """Refuse a data path that is not a file before anything (the tokenizer trainer) reads it."""
    if not path.exists():
        raise DataError(f"{path}: no such data file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")


def read_conversations(path: Path) -> list[list[Message]]:
    """All conversations of a chat JSONL file, checked line by line."""
    conversations = []
    with path.open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{where}: not valid UTF-8") from None
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise DataError(
                    f'{where}: expected {{"messages": [...]}} with at least one message'
                )
            for index, message in enumerate(messages):
                if not isinstance(message, dict) or message.get("role") not in ROLES:
                    raise DataError(f"{where}: message {index} needs a role in {ROLES}")
                if not isinstance(message.get("content"), str):
                    raise DataError(f"{where}: message {index} needs a string content")
            if not any(message["role"] == "assistant" for message in messages):
                raise DataError(f"{where}: no assistant message to learn from")
            conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not conversations:
        raise DataError(f"{path}: no conversations")
    return conversations


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[Message], prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    assert isinstance(text, str)
    return text


def assistant_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    full = _render(tokenizer, messages, prompt=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:index], prompt=True)) if index else 0
        end = len(_render(tokenizer, messages[: index + 1], prompt=False))
        if not full.startswith(_render(tokenizer, messages[: index + 1], prompt=False)):
            raise DataError(
                "the chat template does not render a conversation as the sum of its prefixes; "
                "cannot tell assistant tokens apart"
            )
        spans.append((start, end))
    return full, spans


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message]
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and, per token, 1 where it belongs to an assistant turn."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    predict = [
        int(any(lo <= begin < hi for lo, hi in spans)) for begin, _ in encoded["offset_mapping"]
    ]
    return ids, predict


@dataclass(frozen=True)
class RowStore:
    """Fixed-length rows over two flat memory-mapped arrays; row k starts at ``k * stride``."""

    tokens: np.ndarray
    flags: np.ndarray
    row_len: int
    stride: int
    rows: int

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and flags of the given rows, each ``[len(indices), row_len]``."""
        at = (np.asarray(indices, dtype=np.int64) * self.stride)[:, None] + np.arange(self.row_len)
        return np.asarray(self.tokens[at], dtype=np.int64), np.asarray(self.flags[at])

    def has_targets(self) -> bool:
        """Whether any row predicts a token (a row's first position is input only)."""
        chunk = max(1, (1 << 20) // self.row_len)  # rows per read: a few MB of indices
        for start in range(0, self.rows, chunk):
            _, flags = self.batch(np.arange(start, min(start + chunk, self.rows)))
            if np.any(flags[:, 1:] & PREDICT):
                return True
        return False


@dataclass(frozen=True)
class TrainingData:
    train: RowStore
    eval: RowStore | None
    folder: Path
    predicted_tokens: int


def _split(count: int, fraction: float) -> np.ndarray:
    """Indices of the held-out conversations: a fixed draw that does not depend on the run seed."""
    held = round(count * fraction)
    if fraction > 0 and count > 1:
        held = min(max(held, 1), count - 1)
    order = np.random.default_rng(12345).permutation(count)
    return np.sort(order[:held])


def _pack(
    encoded: list[tuple[list[int], list[int]]], seq_len: int, packing: bool, pad_id: int
) -> tuple[np.ndarray, np.ndarray, int]:
    row_len = seq_len + 1
    if packing:
        tokens = np.fromiter((t for ids, _ in encoded for t in ids), dtype=np.int32)
        flags = np.fromiter((REAL | p for _, marks in encoded for p in marks), dtype=np.uint8)
        rows = max((len(tokens) - 1) // seq_len, 0)
        keep = rows * seq_len + 1 if rows else 0
        return tokens[:keep], flags[:keep], rows
    tokens = np.full((len(encoded), row_len), pad_id, dtype=np.int32)
    flags = np.zeros((len(encoded), row_len), dtype=np.uint8)
    for row, (ids, marks) in enumerate(encoded):
        used = min(len(ids), row_len)
        tokens[row, :used] = ids[:used]
        flags[row, :used] = REAL | np.asarray(marks[:used], dtype=np.uint8)
    return tokens.reshape(-1), flags.reshape(-1), len(encoded)


def _tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update((backend.to_str() if backend is not None else repr(tokenizer)).encode())
    digest.update(str(tokenizer.chat_template).encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_store(folder: Path, name: str, meta: dict[str, Any]) -> RowStore | None:
    info = meta[name]
    if info["rows"] == 0:
        return None
    tokens = np.memmap(folder / f"{name}.tokens", dtype=np.int32, mode="r")
    flags = np.memmap(folder / f"{name}.flags", dtype=np.uint8, mode="r")
    return RowStore(tokens, flags, meta["row_len"], info["stride"], info["rows"])


def prepare_data(
    path: Path,
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    packing: bool,
    eval_fraction: float,
    cache_dir: Path,
) -> TrainingData:
    """Tokenize and pack a chat file into the cache (once) and open it memory-mapped."""
    require_data_file(path)
    key_parts = [CACHE_VERSION, _file_digest(path), _tokenizer_digest(tokenizer)]
    key_text = ":".join([*key_parts, str(seq_len), str(packing), repr(eval_fraction)])
    folder = cache_dir / f"rows-{hashlib.sha256(key_text.encode()).hexdigest()[:16]}"
    if not (folder / "meta.json").is_file():
        _write_cache(path, tokenizer, seq_len, packing, eval_fraction, folder)
    meta = json.loads((folder / "meta.json").read_text())
    train = _open_store(folder, "train", meta)
    if train is None:
        raise DataError(
            f"{path}: too little data for one row of seq_len {seq_len} "
            f"({meta['train']['tokens']} tokens)"
        )
    if not train.has_targets():
        raise DataError(
            f"{path}: no assistant tokens within seq_len {seq_len} in any training row: "
            "nothing to learn (raise data.seq_len or shorten the prompts)"
        )
    return TrainingData(train, _open_store(folder, "eval", meta), folder, meta["predicted"])


def _write_cache(
    path: Path,
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    packing: bool,
    eval_fraction: float,
    folder: Path,
) -> None:
    conversations = read_conversations(path)
    held_out = set(_split(len(conversations), eval_fraction).tolist())
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    encoded = [encode_conversation(tokenizer, messages) for messages in conversations]
    scratch = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    meta: dict[str, Any] = {"row_len": seq_len + 1, "packing": packing, "source": str(path)}
    for name, chosen in (
        ("train", [e for i, e in enumerate(encoded) if i not in held_out]),
        ("eval", [e for i, e in enumerate(encoded) if i in held_out]),
    ):
        tokens, flags, rows = _pack(chosen, seq_len, packing, pad_id)
        tokens.tofile(scratch / f"{name}.tokens")
        flags.tofile(scratch / f"{name}.flags")
        meta[name] = {
            "rows": rows,
            "stride": seq_len if packing else seq_len + 1,
            "tokens": int(sum(len(ids) for ids, _ in chosen)),
            "conversations": len(chosen),
        }
    meta["predicted"] = int(sum(sum(marks) for _, marks in encoded))
    (scratch / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        scratch.rename(folder)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)  # another process wrote the same cache


@dataclass
class DataCursor:
    """Where the next batch starts: the row order of an epoch is derived from (seed, epoch)."""

    seed: int
    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataCursor:
        return cls(int(data["seed"]), int(data["epoch"]), int(data["position"]))


class BatchSampler:
    """Draws batches of row indices; ``cursor`` is all the state a resume needs."""

    def __init__(self, rows: int, batch_size: int, cursor: DataCursor) -> None:
        if rows < batch_size:
            raise DataError(f"only {rows} training rows, fewer than batch_size {batch_size}")
        self.rows = rows
        self.batch_size = batch_size
        self.cursor = cursor
        self._order_epoch = -1
        self._order = np.empty(0, dtype=np.int64)

    @property
    def batches_per_epoch(self) -> int:
        return self.rows // self.batch_size

    def _order_for(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            self._order = np.random.default_rng([self.cursor.seed, epoch]).permutation(self.rows)
            self._order_epoch = epoch
        return self._order

    def next(self) -> np.ndarray:
        if self.cursor.position + self.batch_size > self.rows:
            self.cursor.epoch += 1
            self.cursor.position = 0
        start = self.cursor.position
        self.cursor.position += self.batch_size
        return self._order_for(self.cursor.epoch)[start : start + self.batch_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next()
