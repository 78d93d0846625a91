"""Karpathy's tokenisation and the vocabulary of a caption run: words kept by count, special tokens first,
captions encoded to padded id tensors.

    vocab = Vocabulary.build([tokenize("A dog runs."), tokenize("A cat sits.")], min_count=1)
    ids, lengths, truncated = encode_captions(vocab, [tokenize("a dog")], max_length=16)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from lienzo.errors import ConfigError, ModelError

_NOT_WORD = re.compile(r"[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Karpathy's preprocessing (neuraltalk2 `prepro.py`): lower case, punctuation deleted, split on white space.

    Punctuation is deleted, not turned into a space, as neuraltalk2's `translate(None, string.punctuation)` did, so
    words read from Flickr8k or COCO files match the tokens in Karpathy's json files ("t-shirt" -> "tshirt").

    >>> tokenize("A dog, running!")
    ['a', 'dog', 'running']
    >>> tokenize("A man's T-shirt.")
    ['a', 'mans', 'tshirt']
    """
    return _NOT_WORD.sub("", text.lower()).split()



class Vocabulary:
    """Words ↔ ids with `<pad> <start> <end> <unk>` at 0..3, built from training captions only.

    >>> vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]], min_count=2)
    >>> vocab.words, vocab.encode(["a", "cat"], max_length=5), vocab.decode([1, 4, 3, 2, 0])
    (['<pad>', '<start>', '<end>', '<unk>', 'a'], [1, 4, 3, 2], ['a', '<unk>'])
    """

    PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
    SPECIALS = (PAD, START, END, UNK)
    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    def __init__(self, words: Sequence[str], min_count: int = 1):
        self.words = list(words)
        self.min_count = min_count
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 5, max_size: int | None = None) -> Vocabulary:
        """Words seen at least `min_count` times, most frequent first (ties alphabetical); `max_size` caps the
        vocabulary including the four special tokens."""
        if min_count < 1:
            raise ConfigError(f"min_count={min_count}: must be at least 1")
        if max_size is not None and max_size <= len(cls.SPECIALS):
            raise ConfigError(f"max_size={max_size}: must exceed {len(cls.SPECIALS)} (the special tokens)")
        counts = Counter(word for tokens in token_lists for word in tokens if word not in cls.SPECIALS)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise ConfigError(f"the vocabulary is empty: no training word occurs min_count={min_count} times "
                              f"({_kept_by_count(counts)}); lower min_count")
        if max_size is not None:
            kept = kept[: max_size - len(cls.SPECIALS)]
        return cls(list(cls.SPECIALS) + kept, min_count=min_count)

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def index(self, word: str) -> int:
        return self._ids.get(word, self.unk_id)

    def encode(self, tokens: Sequence[str], max_length: int) -> list[int]:
        """[<start>] + the first `max_length` word ids + [<end>]."""
        return [self.start_id] + [self.index(w) for w in tokens[:max_length]] + [self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first <end>, without <pad> and <start>; an id outside the vocabulary is a ModelError."""
        words = []
        for value in ids:
            i = int(value)
            if i == self.end_id:
                break
            if not 0 <= i < len(self.words):
                raise ModelError(f"word id {i} is outside the vocabulary of {len(self.words)} words "
                                 f"(the model and the vocabulary differ)")
            if i not in (self.pad_id, self.start_id):
                words.append(self.words[i])
        return words

    def to_dict(self) -> dict:
        return {"words": list(self.words), "min_count": self.min_count}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        """The vocabulary a run saved; a damaged one (no special tokens first, repeated words) is a ModelError."""
        words = data.get("words") if isinstance(data, dict) else None
        if not isinstance(words, list) or tuple(words[:4]) != cls.SPECIALS:
            raise ModelError(f"saved vocabulary does not start with {' '.join(cls.SPECIALS)}; the checkpoint is damaged")
        if len(set(words)) != len(words) or not all(isinstance(w, str) for w in words):
            raise ModelError("saved vocabulary repeats words or holds non-strings; the checkpoint is damaged")
        return cls(words, min_count=int(data.get("min_count", 1)))


def _kept_by_count(counts: Counter) -> str:
    """'min_count 1 keeps 40 words, 2 keeps 12, ...' up to the first count that keeps none."""
    parts, threshold = [], 1
    while True:
        kept = sum(1 for c in counts.values() if c >= threshold)
        parts.append(f"{threshold} keeps {kept}")
        if kept == 0 or threshold >= 10:
            break
        threshold += 1
    return "min_count " + ", ".join(parts)


def encode_captions(vocab: Vocabulary, token_lists: Sequence[Sequence[str]], max_length: int
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(N × (max_length + 2) ids padded with <pad>, lengths counting <start> and <end>, captions truncated)."""
    if max_length < 1:
        raise ConfigError(f"max_length={max_length}: must be at least 1")
    ids = torch.full((len(token_lists), max_length + 2), vocab.pad_id, dtype=torch.long)
    lengths = torch.zeros(len(token_lists), dtype=torch.long)
    truncated = 0
    for row, tokens in enumerate(token_lists):
        encoded = vocab.encode(tokens, max_length)
        ids[row, : len(encoded)] = torch.tensor(encoded, dtype=torch.long)
        lengths[row] = len(encoded)
        truncated += len(tokens) > max_length
    return ids, lengths, truncated


def coverage(vocab: Vocabulary, token_lists: Iterable[Sequence[str]]) -> float:
    """Share of tokens the vocabulary knows (not <unk>); 0.0 when there are no tokens."""
    total = known = 0
    for tokens in token_lists:
        total += len(tokens)
        known += sum(1 for w in tokens if vocab.index(w) != vocab.unk_id)
    return known / total if total else 0.0
