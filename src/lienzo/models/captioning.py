"""Captioning networks, registry kind "caption": image–sentence ranking and two caption generators.

    rank = create_model("rank", feature_dim=4096, vocab_size=2500)              # the thesis: affine + BRNN
    im, s = rank(feats, tokens, lengths)                                        # N×1024 each, L2-normalised
    loss = ranking_loss(rank.similarity(im, s), margin=1.0, hardest=False)      # both directions, summed
    net = create_model("showtell", feature_dim=2048, vocab_size=2500).eval()
    words, scores = beam_search(net, feats, beam_size=3, max_length=16)        # N×≤16 word ids, PAD-filled

Token ids follow lienzo.data.captions.Vocabulary: <pad>=0, <start>=1, <end>=2, <unk>=3; a caption tensor
is N×T = [START, w1..wn, END, PAD...] and `lengths` count START and END.

Every generator has the decoding face that `greedy` and `beam_search` use: `init_state(feats)`,
`step(words, state) -> (log_probs N×V float32, state)` and `reorder_state(state, index)`. The rows of a
state are image-major, the same number per image (1 after `init_state`, `beam_size` in a beam search), and
a reorder keeps every row among its own image's rows: so Attend keeps one copy of each image's grid however
many beams share it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lienzo.errors import ConfigError, ModelError
from lienzo.models.registry import register_model

PAD, START, END, UNK = 0, 1, 2, 3


def _check_choice(name: str, key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ModelError(f"{name}: {key} must be one of {', '.join(options)}, got {value!r}")


def _check_positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ModelError(f"{name}: {key} must be a whole number ≥ 1, got {value!r}")


# ---- retrieval: images and sentences in one space (Karpathy & Fei-Fei 2015, Kiros et al. 2014) ---------

class RankModel(nn.Module):
    """An affine image embedding and a recurrent sentence encoder into one joint space.

    encoder "gru"/"lstm": the hidden state at each caption's last true token (pads come after the words, so
    a one-way net's output there never saw them). "brnn": a bidirectional GRU (joint_dim/2 per direction)
    whose outputs are averaged over the true tokens; packed, so the backward direction starts at the last
    word rather than reading the pads first. score "cosine" L2-normalises both embeddings, so `similarity`
    is a dot product either way."""

    def __init__(self, feature_dim: int, vocab_size: int, word_dim: int, joint_dim: int, encoder: str,
                 score: str, dropout: float):
        super().__init__()
        self.encoder, self.score, self.joint_dim = encoder, score, joint_dim
        self.image = nn.Linear(feature_dim, joint_dim)
        self.word_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM, "brnn": nn.GRU}[encoder]
        bidirectional = encoder == "brnn"
        self.rnn = rnn(word_dim, joint_dim // 2 if bidirectional else joint_dim, batch_first=True)
        # brnn: the backward direction is a second GRU run over each caption reversed within its length, so both
        # directions are plain padded runs (packed bidirectional runs are ~10× slower under CPU bf16 autocast).
        self.rnn_backward = nn.GRU(word_dim, joint_dim // 2, batch_first=True) if bidirectional else None

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if self.score == "cosine" else x

    def embed_images(self, feats: torch.Tensor) -> torch.Tensor:
        """N×D image features → N×J."""
        return self._out(self.image(feats))

    def embed_sentences(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """N×T captions with their lengths (START and END counted) → N×J, whatever the trailing padding."""
        words = self.dropout(self.word_embedding(tokens))
        if self.encoder == "brnn":
            # Position t of the reversed caption is word length−1−t (pads stay after the words), so neither
            # direction reads a pad before a word; outputs are averaged over the true positions.
            steps = torch.arange(tokens.shape[1], device=tokens.device)[None]
            valid = steps < lengths[:, None]
            reverse = torch.where(valid, lengths[:, None] - 1 - steps, steps)
            backward_words = words.gather(1, reverse[..., None].expand_as(words))
            backward = self.rnn_backward(backward_words)[0]
            backward = backward.gather(1, reverse[..., None].expand(-1, -1, backward.shape[-1]))  # back in word order
            outputs = torch.cat([self.rnn(words)[0], backward], -1) * valid[..., None]
            sentence = outputs.sum(1) / lengths.to(outputs.dtype)[:, None]
        else:
            outputs = self.rnn(words)[0]
            sentence = outputs[torch.arange(len(tokens), device=tokens.device), lengths - 1]
        return self._out(sentence)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor):
        return self.embed_images(feats), self.embed_sentences(tokens, lengths)

    @staticmethod
    def similarity(im: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Ni×Ns scores: image i against sentence j."""
        return im @ s.t()


@register_model(kind="caption")
def rank(*, feature_dim=4096, vocab_size=2500, word_dim=300, joint_dim=1024, encoder="brnn", score="cosine",
         dropout=0.0):
    """Image–sentence ranking model (the thesis): affine image embedding, recurrent sentence encoder.

    encoder: brnn (bidirectional GRU, mean over words), gru or lstm (last state); score: cosine or dot."""
    _check_positive("rank", feature_dim=feature_dim, vocab_size=vocab_size, word_dim=word_dim, joint_dim=joint_dim)
    _check_choice("rank", "encoder", encoder, ("brnn", "gru", "lstm"))
    _check_choice("rank", "score", score, ("cosine", "dot"))
    if encoder == "brnn" and joint_dim % 2:
        raise ModelError(f"rank: the brnn encoder splits joint_dim between two directions; {joint_dim} is odd")
    return RankModel(feature_dim, vocab_size, word_dim, joint_dim, encoder, score, dropout)


def ranking_loss(scores: torch.Tensor, margin: float, hardest: bool,
                 same_image: torch.Tensor | None = None) -> torch.Tensor:
    """Bidirectional hinge loss on a B×B score matrix (image i vs sentence j, positives on the diagonal),
    summed over the batch.

    Each image against the other sentences and each sentence against the other images:
    max(0, margin + s_ij − s_ii). hardest=False sums every hinge (Karpathy; Kiros et al.), hardest=True
    keeps the largest per image and per sentence (VSE++, Faghri et al. 2018). `same_image` (B×B bool)
    marks pairs showing one image, which are never negatives. Computed in float32 (bf16 scores lose
    the small differences the margin works on)."""
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"ranking_loss needs a square B×B score matrix, got {tuple(scores.shape)}")
    scores = scores.float()
    positive = scores.diagonal()
    ignore = torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    if same_image is not None:
        ignore = ignore | same_image.to(scores.device, torch.bool)
    cost_sentence = (margin + scores - positive[:, None]).clamp(min=0).masked_fill(ignore, 0)  # row i: image i
    cost_image = (margin + scores - positive[None, :]).clamp(min=0).masked_fill(ignore, 0)    # column j: sentence j
    if hardest:
        return cost_sentence.max(1).values.sum() + cost_image.max(0).values.sum()
    return cost_sentence.sum() + cost_image.sum()


# ---- generation -----------------------------------------------------------------------------------

def _sampled_words(teacher: torch.Tensor, previous_logits: torch.Tensor, sample_prob: float) -> torch.Tensor:
    """Scheduled sampling (Bengio et al. 2015): each row's teacher word, or with probability `sample_prob`
    the model's own greedy prediction from the step before."""
    own = previous_logits.detach().argmax(-1)
    return torch.where(torch.rand(len(teacher), device=teacher.device) < sample_prob, own, teacher)


class ShowTell(nn.Module):
    """Show and Tell (Vinyals et al. 2015): the projected image feature is the LSTM's first input, the
    words follow; the output after the image is discarded, the others predict the next word."""

    def __init__(self, feature_dim: int, vocab_size: int, word_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.project = nn.Linear(feature_dim, word_dim)
        self.word_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(word_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor, sample_prob: float = 0.0) -> torch.Tensor:
        """N×D features, N×T captions → N×(T−1)×V logits predicting tokens[:, 1:]. Teacher forcing is one
        LSTM call over [image, START, w1, …]; sample_prob > 0 steps word by word."""
        if sample_prob > 0:
            return self._scheduled(feats, tokens, sample_prob)
        inputs = torch.cat([self.project(feats)[:, None], self.word_embedding(tokens[:, :-1])], 1)
        outputs = self.lstm(self.dropout(inputs))[0][:, 1:]
        return self.out(self.dropout(outputs))

    def _scheduled(self, feats: torch.Tensor, tokens: torch.Tensor, sample_prob: float) -> torch.Tensor:
        h, c = self._read_image(self.dropout(self.project(feats)))
        logits: list[torch.Tensor] = []
        for t in range(tokens.shape[1] - 1):
            words = tokens[:, t] if t == 0 else _sampled_words(tokens[:, t], logits[-1], sample_prob)
            h, c = self._cell(self.dropout(self.word_embedding(words)), h, c)
            logits.append(self.out(self.dropout(h)))
        return torch.stack(logits, 1)

    def _cell(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of self.lstm with its own weights. For a single step, two matrix products and the gates
        cost a third of nn.LSTM's call on a few rows (the per-image and greedy case) and a little less on many."""
        lstm = self.lstm
        gates = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(h, lstm.weight_hh_l0, lstm.bias_hh_l0)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _read_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = image.new_zeros(len(image), self.lstm.hidden_size)
        return self._cell(image, zeros, zeros)

    def init_state(self, feats: torch.Tensor):
        """(h, c), each N×hidden, after reading the image: ready for START."""
        return self._read_image(self.project(feats))

    def step(self, words: torch.Tensor, state):
        h, c = self._cell(self.word_embedding(words), *state)
        return F.log_softmax(self.out(h).float(), -1), (h, c)

    @staticmethod
    def reorder_state(state, index: torch.Tensor):
        return tuple(s.index_select(0, index) for s in state)


@register_model(kind="caption")
def showtell(*, feature_dim=4096, vocab_size=2500, word_dim=512, hidden=512, dropout=0.5):
    """Show and Tell caption generator (Vinyals et al. 2015): the image is the LSTM's first input."""
    _check_positive("showtell", feature_dim=feature_dim, vocab_size=vocab_size, word_dim=word_dim, hidden=hidden)
    return ShowTell(feature_dim, vocab_size, word_dim, hidden, dropout)


class Attend(nn.Module):
    """Show, Attend and Tell with soft attention (Xu et al. 2015) over an N×L×C grid of features.

    h0, c0 from the mean feature; each step additive attention over the L positions from the previous
    hidden state, the context scaled by a gate β = σ(W h), concatenated with the word embedding into an
    LSTMCell; the word is predicted from the dropped-out hidden state (the common simplification of the
    paper's deep output layer)."""

    def __init__(self, feature_dim: int, vocab_size: int, word_dim: int, hidden: int, attention_dim: int,
                 dropout: float):
        super().__init__()
        self.word_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.init_h, self.init_c = nn.Linear(feature_dim, hidden), nn.Linear(feature_dim, hidden)
        self.attend_feats = nn.Linear(feature_dim, attention_dim)
        self.attend_hidden = nn.Linear(hidden, attention_dim)
        self.attend_score = nn.Linear(attention_dim, 1)
        self.gate = nn.Linear(hidden, feature_dim)
        self.cell = nn.LSTMCell(word_dim + feature_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab_size)

    def _attend(self, h: torch.Tensor, feats: torch.Tensor, keys: torch.Tensor):
        """Gated context and weights for R = N·k state rows (k per image, image-major) over N grids: the
        k rows of an image share its grid, so beams never copy it."""
        n, positions, channels = feats.shape
        query = self.attend_hidden(h).view(n, -1, 1, keys.shape[-1])                      # N×k×1×A
        alpha = self.attend_score(torch.tanh(keys[:, None] + query)).squeeze(-1).softmax(-1)  # N×k×L
        context = torch.bmm(alpha, feats).view(len(h), channels)
        return context * torch.sigmoid(self.gate(h)), alpha.view(len(h), positions)

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor, sample_prob: float = 0.0):
        """N×L×C features, N×T captions → (N×(T−1)×V logits predicting tokens[:, 1:], N×(T−1)×L attention)."""
        h, c, feats, keys = self.init_state(feats)
        embedded = self.dropout(self.word_embedding(tokens[:, :-1]))
        hiddens, alphas, logits = [], [], []
        for t in range(tokens.shape[1] - 1):
            if sample_prob > 0 and t > 0:
                words = self.dropout(self.word_embedding(_sampled_words(tokens[:, t], logits[-1], sample_prob)))
            else:
                words = embedded[:, t]
            context, alpha = self._attend(h, feats, keys)
            h, c = self.cell(torch.cat([words, context], 1), (h, c))
            hiddens.append(h)
            alphas.append(alpha)
            if sample_prob > 0:  # the next input needs this step's prediction now
                logits.append(self.out(self.dropout(h)))
        # Teacher forcing: one output layer call for all steps, not one per step.
        out = torch.stack(logits, 1) if sample_prob > 0 else self.out(self.dropout(torch.stack(hiddens, 1)))
        return out, torch.stack(alphas, 1)

    def init_state(self, feats: torch.Tensor):
        """(h, c, grid, attention keys): h0 and c0 from the mean feature (tanh, bounded like the cell's own)."""
        mean = feats.mean(1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)), feats, self.attend_feats(feats)

    def step(self, words: torch.Tensor, state):
        h, c, feats, keys = state
        context, _ = self._attend(h, feats, keys)
        h, c = self.cell(torch.cat([self.word_embedding(words), context], 1), (h, c))
        return F.log_softmax(self.out(h).float(), -1), (h, c, feats, keys)

    @staticmethod
    def reorder_state(state, index: torch.Tensor):
        """Reorders h and c; the grids stay one per image (see the module docstring)."""
        h, c, feats, keys = state
        return h.index_select(0, index), c.index_select(0, index), feats, keys


@register_model(kind="caption")
def attend(*, feature_dim=512, vocab_size=2500, word_dim=512, hidden=512, attention_dim=512, dropout=0.5):
    """Show, Attend and Tell caption generator (Xu et al. 2015): soft attention over a feature grid."""
    _check_positive("attend", feature_dim=feature_dim, vocab_size=vocab_size, word_dim=word_dim, hidden=hidden,
                    attention_dim=attention_dim)
    return Attend(feature_dim, vocab_size, word_dim, hidden, attention_dim, dropout)


def doubly_stochastic(alphas: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Xu et al.'s attention penalty per caption, Σ_i (1 − Σ_t α_ti)², over its `lengths` real steps
    (lengths − 1 of the caption tensor: the steps that predict a word or END); λ is the caller's.

    alphas: N×S×L from Attend.forward → N penalties. It pushes every position to get attention at some
    step, so captions look at the whole image."""
    steps = torch.arange(alphas.shape[1], device=alphas.device)
    real = (steps[None, :] < lengths.to(alphas.device)[:, None]).to(alphas.dtype)
    return ((1 - (alphas * real[:, :, None]).sum(1)) ** 2).sum(1)


# ---- decoding: greedy and beam search, batched over images and beams --------------------------------

def _check_decoding(beam_size: int, max_length: int) -> None:
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam size must be a whole number ≥ 1, got {beam_size!r}")
    if not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(f"max_length must be a whole number ≥ 1, got {max_length!r}")


def _length_norm(lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
    """GNMT's ((5 + |Y|) / 6)^α (Wu et al. 2016), |Y| counting the END token."""
    return ((5 + lengths.float()) / 6) ** length_penalty


def _finish(sequences: torch.Tensor, end: int, pad: int) -> torch.Tensor:
    """Word ids without END (and what follows it), PAD-filled, trimmed to the longest caption."""
    ended = (sequences == end).cumsum(1) > 0
    words = sequences.masked_fill(ended, pad)
    width = int((~ended).sum(1).max()) if len(words) else 0
    return words[:, :width]


def _never(log_probs: torch.Tensor, banned: tuple[int, ...]) -> torch.Tensor:
    """Tokens no caption may hold (<pad>, <start>, and those asked for, e.g. <unk>) get log-prob −inf."""
    banned = [i for i in banned if i < log_probs.shape[1]]
    return log_probs.index_fill_(1, torch.tensor(banned, device=log_probs.device), -math.inf)


def _pad_only(vocab_size: int, pad: int, device) -> torch.Tensor:
    """The log-probabilities of a finished caption's next token: PAD for free, nothing else."""
    row = torch.full((1, vocab_size), -math.inf, device=device)
    row[0, pad] = 0.0
    return row


@torch.no_grad()
def greedy(decoder, feats: torch.Tensor, max_length: int = 16, length_penalty: float = 0.0, start: int = START,
           end: int = END, pad: int = PAD, banned: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely word at each step, for all images at once; the same output as `beam_search`.
    Call it with the decoder in eval mode (dropout off)."""
    _check_decoding(1, max_length)
    state = decoder.init_state(feats)
    n = len(feats)
    words = torch.full((n,), start, dtype=torch.long, device=feats.device)
    finished = torch.zeros(n, dtype=torch.bool, device=feats.device)
    scores = torch.zeros(n, device=feats.device)
    lengths = torch.zeros(n, dtype=torch.long, device=feats.device)
    chosen, done = [], 0
    for _ in range(max_length):
        log_probs, state = decoder.step(words, state)
        log_probs = _never(log_probs, (pad, start, *banned))
        if done:
            log_probs = torch.where(finished[:, None], _pad_only(log_probs.shape[1], pad, log_probs.device), log_probs)
        best, words = log_probs.max(1)
        scores, lengths = scores + best, lengths + (~finished).long()
        finished = finished | (words == end)
        chosen.append(words)
        done = int(finished.sum())  # the one host sync per step
        if done == n:
            break
    return _finish(torch.stack(chosen, 1), end, pad), scores / _length_norm(lengths, length_penalty)


@torch.no_grad()
def beam_search(decoder, feats: torch.Tensor, beam_size: int = 3, max_length: int = 16,
                length_penalty: float = 0.0, start: int = START, end: int = END,
                pad: int = PAD, banned: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The best caption per image by beam search: N × ≤max_length word ids (no START/END, PAD-filled) and
    its score, the log-probability sum / ((5 + length) / 6)^length_penalty (GNMT; 0 = the plain sum).

    All images and beams are one batch of N·beam rows per step: one decoder call and one top-k per step,
    no Python loop over images or beams. Finished beams stay in the beam with their score (PAD at log-prob
    0). Candidates are ranked by the normalised score, so a finished caption competes fairly with longer
    ones. Stops when every beam has finished or after max_length tokens. beam_size 1 is `greedy`.
    Call it with the decoder in eval mode (dropout off)."""
    _check_decoding(beam_size, max_length)
    if beam_size == 1:
        return greedy(decoder, feats, max_length, length_penalty, start, end, pad, banned)
    return _beam(decoder, feats, beam_size, max_length, length_penalty, start, end, pad, banned)


def _beam(decoder, feats, beam_size, max_length, length_penalty, start, end, pad, banned=()):
    n, device = len(feats), feats.device
    rows = torch.arange(n, device=device)
    state = decoder.reorder_state(decoder.init_state(feats), rows.repeat_interleave(beam_size))
    words = torch.full((n * beam_size,), start, dtype=torch.long, device=device)
    # Only the first beam of each image is alive at first, so the first step picks beam_size distinct words.
    scores = torch.full((n, beam_size), -math.inf, device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(n * beam_size, dtype=torch.bool, device=device)
    lengths = torch.zeros(n * beam_size, dtype=torch.long, device=device)
    sequences = torch.empty(n * beam_size, 0, dtype=torch.long, device=device)
    done = 0
    for _ in range(max_length):
        log_probs, state = decoder.step(words, state)
        log_probs = _never(log_probs, (pad, start, *banned))
        vocab_size = log_probs.shape[1]
        if done:  # skipped while nothing has finished: it would change nothing
            log_probs = torch.where(finished[:, None], _pad_only(vocab_size, pad, device), log_probs)
        lengths = lengths + (~finished).long()
        totals = scores.view(-1, 1) + log_probs                                          # (N·beam)×V
        keys = totals / _length_norm(lengths, length_penalty)[:, None] if length_penalty else totals
        _, best = keys.view(n, -1).topk(beam_size, dim=1)                                # N×beam of beam·V
        scores = totals.view(n, -1).gather(1, best)
        index = (rows[:, None] * beam_size + best // vocab_size).view(-1)                # the parent rows
        words = (best % vocab_size).view(-1)
        state = decoder.reorder_state(state, index)
        sequences = torch.cat([sequences.index_select(0, index), words[:, None]], 1)
        lengths = lengths.index_select(0, index)
        finished = finished.index_select(0, index) | (words == end)
        done = int(finished.sum())  # the one host sync per step
        if done == len(finished):
            break
    final = scores / _length_norm(lengths, length_penalty).view(n, beam_size)
    best_score, winner = final.max(1)
    best_rows = rows * beam_size + winner
    return _finish(sequences.index_select(0, best_rows), end, pad), best_score


# ---- word vectors ------------------------------------------------------------------------------------

def load_word_vectors(path: str | Path, words: list[str], dim: int) -> tuple[torch.Tensor, int]:
    """Rows of a GloVe ("word v1 … vd" per line) or word2vec text ("count dim" first) file for `words`:
    a len(words)×dim tensor and how many words were found.

    A word matches exactly, else by its lower-case form (word2vec's vocabulary is cased, captions are not;
    an exact match wins). Words not in the file get N(0, 0.1²) rows from a fixed seed, so two runs start
    alike. Only the lines of wanted words are parsed: a GloVe file of millions of lines reads in seconds."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"word vectors: {path} does not exist (a GloVe or word2vec text file)")
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(len(words), dim, generator=generator) * 0.1
    index = {word: i for i, word in enumerate(words)}
    exact = torch.zeros(len(words), dtype=torch.bool)
    found = torch.zeros(len(words), dtype=torch.bool)
    try:
        with path.open(encoding="utf-8") as file:
            for number, line in enumerate(file):
                fields = line.rstrip("\n").rstrip().split(" ")
                if number == 0 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    _check_dim(path, int(fields[1]), dim)  # the word2vec header
                    continue
                if number <= 1:
                    _check_dim(path, len(fields) - 1, dim)
                _take(fields, dim, path, index, vectors, exact, found)
    except UnicodeDecodeError as error:
        raise ConfigError(f"word vectors: {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return vectors, int(found.sum())


def _check_dim(path: Path, file_dim: int, dim: int) -> None:
    if file_dim != dim:
        raise ConfigError(f"word vectors: {path} has {file_dim}-dimensional vectors, the model's words have {dim} "
                          f"(set caption.word_dim: {file_dim}, or use a file of dimension {dim})")


def _take(fields: list[str], dim: int, path: Path, index: dict, vectors, exact, found) -> None:
    """Store one line's vector if its word (or its lower-case form) is wanted and not yet matched exactly."""
    word = " ".join(fields[:-dim]) if len(fields) > dim + 1 else fields[0]  # GloVe 840B has words with spaces
    is_exact = word in index
    i = index.get(word, index.get(word.lower()))
    if i is None or exact[i] or (found[i] and not is_exact):
        return
    if len(fields) - 1 < dim:
        _check_dim(path, len(fields) - 1, dim)
    try:
        vectors[i] = torch.tensor([float(v) for v in fields[-dim:]])
    except ValueError:
        raise ConfigError(f"word vectors: {path}: the line of {word!r} has a value that is not a number") from None
    found[i], exact[i] = True, is_exact
