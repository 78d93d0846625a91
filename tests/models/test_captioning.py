"""The captioning networks (registry kind "caption"): shapes, padding independence, the ranking losses by
hand, beam search against greedy and brute force on a hand-set toy decoder, scheduled sampling, the
word-vector reader, and a few training steps on a toy problem."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lienzo.errors import ConfigError, ModelError
from lienzo.models import create_model, list_models
from lienzo.models.captioning import (
    _beam,
    beam_search,
    doubly_stochastic,
    greedy,
    load_word_vectors,
    ranking_loss,
)

PAD, START, END = 0, 1, 2


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny models run hundreds of tiny ops: on one thread they never wait for a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _captions(rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[START, words…, END, PAD…] rows of `width` tokens and their lengths (START and END counted)."""
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    for i, words in enumerate(rows):
        sequence = [START, *words, END]
        tokens[i, :len(sequence)] = torch.tensor(sequence)
    return tokens, torch.tensor([len(words) + 2 for words in rows])


def _logits(out):
    """The logits of a generator's output (Attend also returns its attention)."""
    return out[0] if isinstance(out, tuple) else out


# ---- the registry and shapes -------------------------------------------------------------------------

def test_the_caption_registry_and_shapes():
    assert list_models(kind="caption") == ["attend", "rank", "showtell"]
    torch.manual_seed(0)
    tokens, lengths = _captions([[5, 6, 7], [8], [9, 10, 11, 12, 13]], width=9)
    rank = create_model("rank", feature_dim=20, vocab_size=30, word_dim=8, joint_dim=12)
    im, s = rank(torch.randn(3, 20), tokens, lengths)
    assert im.shape == s.shape == (3, 12) and rank.similarity(im, s[:2]).shape == (3, 2)
    assert torch.allclose(im.norm(dim=1), torch.ones(3)) and torch.allclose(s.norm(dim=1), torch.ones(3))  # cosine
    assert rank.word_embedding.weight.shape == (30, 8)
    dot = create_model("rank", feature_dim=20, vocab_size=30, word_dim=8, joint_dim=12, score="dot")
    assert not torch.allclose(dot.embed_images(torch.randn(3, 20)).norm(dim=1), torch.ones(3))
    showtell = create_model("showtell", feature_dim=20, vocab_size=30, word_dim=8, hidden=16)
    assert showtell(torch.randn(3, 20), tokens).shape == (3, 8, 30)
    attend = create_model("attend", feature_dim=6, vocab_size=30, word_dim=8, hidden=16, attention_dim=10)
    logits, alphas = attend(torch.randn(3, 4, 6), tokens)
    assert logits.shape == (3, 8, 30) and alphas.shape == (3, 8, 4)
    assert torch.allclose(alphas.sum(-1), torch.ones(3, 8))  # a distribution over the 4 grid positions
    assert create_model("rank").image.in_features == 4096 and create_model("attend").cell.hidden_size == 512


def test_builder_mistakes_are_model_errors():
    with pytest.raises(ModelError, match="rank: encoder must be one of brnn, gru, lstm, got 'rnn'"):
        create_model("rank", encoder="rnn")
    with pytest.raises(ModelError, match="rank: score must be one of cosine, dot"):
        create_model("rank", score="l2")
    with pytest.raises(ModelError, match="joint_dim.*odd"):
        create_model("rank", joint_dim=101)
    with pytest.raises(ModelError, match="showtell: hidden must be a whole number"):
        create_model("showtell", hidden=0)


@pytest.mark.parametrize("encoder", ["brnn", "gru", "lstm"])
def test_sentence_embedding_ignores_trailing_padding(encoder):
    torch.manual_seed(0)
    rank = create_model("rank", feature_dim=4, vocab_size=20, word_dim=6, joint_dim=8, encoder=encoder).eval()
    rows = [[4, 5, 6], [7, 8, 9, 10, 11], [12]]
    short, lengths = _captions(rows, 8)
    long, _ = _captions(rows, 12)
    # Non-zero pad embeddings (as after loading word vectors): the pads must still never be read.
    rank.word_embedding.weight.data[PAD] = 1.0
    expected = rank.embed_sentences(short, lengths)
    assert torch.allclose(rank.embed_sentences(long, lengths), expected, atol=1e-6)
    # Each caption alone, unpadded: the same vector (so the backward direction starts at END, not at a pad).
    for i, words in enumerate(rows):
        alone, length = _captions([words], len(words) + 2)
        assert torch.allclose(rank.embed_sentences(alone, length)[0], expected[i], atol=1e-6)


def test_brnn_is_the_mean_of_both_directions_over_the_words():
    torch.manual_seed(0)
    rank = create_model("rank", feature_dim=4, vocab_size=20, word_dim=6, joint_dim=8, score="dot").eval()
    tokens, lengths = _captions([[4, 5, 6]], 5)
    words = rank.word_embedding(tokens)
    forward = rank.rnn(words)[0]  # no padding: the plain runs, one over the words, one over them reversed
    backward = rank.rnn_backward(words.flip(1))[0].flip(1)
    outputs = torch.cat([forward, backward], -1)
    assert outputs.shape == (1, 5, 8)
    assert torch.allclose(rank.embed_sentences(tokens, lengths), outputs.mean(1), atol=1e-6)
    # The same as torch's bidirectional GRU with these weights.
    bi = torch.nn.GRU(6, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, value in rank.rnn.named_parameters():
            getattr(bi, name).copy_(value)
            getattr(bi, name + "_reverse").copy_(getattr(rank.rnn_backward, name))
    assert torch.allclose(rank.embed_sentences(tokens, lengths), bi(words)[0].mean(1), atol=1e-6)


# ---- ranking losses by hand ------------------------------------------------------------------------

SCORES = torch.tensor([[0.5, 0.6, 0.4],
                       [0.1, 0.3, 0.2],
                       [0.0, 0.4, 0.7]])


def test_ranking_loss_by_hand():
    # margin 0.2. Image rows (0.2 + s_ij − s_ii): image 0: 0.3, 0.1; image 1: 0, 0.1; image 2: 0, 0.
    # Sentence columns (0.2 + s_ij − s_jj): sentence 0: 0, 0; sentence 1: 0.5, 0.3; sentence 2: 0, 0.
    assert ranking_loss(SCORES, 0.2, hardest=False).item() == pytest.approx(0.4 + 0.1 + 0.8)
    assert ranking_loss(SCORES, 0.2, hardest=True).item() == pytest.approx(0.3 + 0.1 + 0.5)
    two = torch.tensor([[0.5, 0.6], [0.2, 0.4]])
    # margin 1: image 0 – sentence 1: 1.1, image 1 – sentence 0: 0.8; sentence 0 – image 1: 0.7, sentence 1 – image 0: 1.2
    assert ranking_loss(two, 1.0, hardest=False).item() == pytest.approx(1.1 + 0.8 + 0.7 + 1.2)


def test_same_image_pairs_are_never_negatives():
    same = torch.zeros(3, 3, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True  # items 0 and 1 show one image
    # Left: image 0 – sentence 2: 0.1; image 1 – sentence 2: 0.1; sentence 1 – image 2: 0.3.
    assert ranking_loss(SCORES, 0.2, hardest=False, same_image=same).item() == pytest.approx(0.5)
    assert ranking_loss(SCORES, 0.2, hardest=True, same_image=same).item() == pytest.approx(0.5)


def test_hardest_negative_equals_the_peer_and_is_float32():
    torch.manual_seed(0)
    scores = torch.randn(6, 6)
    positive = scores.diag()[:, None]
    eye = torch.eye(6, dtype=torch.bool)
    peer = ((0.2 + scores - positive).clamp(min=0).masked_fill(eye, 0).max(1)[0].sum()
            + (0.2 + scores - positive.t()).clamp(min=0).masked_fill(eye, 0).max(0)[0].sum())
    assert torch.allclose(ranking_loss(scores, 0.2, hardest=True), peer)
    assert ranking_loss(scores.bfloat16(), 0.2, hardest=True).dtype == torch.float32


def test_doubly_stochastic_penalty_counts_only_real_steps():
    alphas = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],   # 2 captions, 3 steps, 2 positions
                           [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])
    # Caption 0, two real steps: Σ_t α = (2, 0) → (1 − 2)² + (1 − 0)² = 2; three: (2, 1) → 1.
    # Caption 1, one real step: (0.5, 0.5) → 0.25 + 0.25; three: (1.5, 1.5) → 0.5.
    assert doubly_stochastic(alphas, torch.tensor([2, 1])).tolist() == pytest.approx([2.0, 0.5])
    assert doubly_stochastic(alphas, torch.tensor([3, 3])).tolist() == pytest.approx([1.0, 0.5])


# ---- decoding ----------------------------------------------------------------------------------------

class ToyDecoder:
    """A Markov chain per image: the next token's log-probabilities depend only on the last token.
    tables: images × V × V probabilities (row = last token); feats: the image ids."""

    def __init__(self, tables: torch.Tensor):
        self.log_tables = tables.clamp(min=1e-12).log()

    def init_state(self, feats):
        return feats.clone()

    def step(self, words, state):
        return self.log_tables[state, words], state

    @staticmethod
    def reorder_state(state, index):
        return state.index_select(0, index)


V = 6  # pad, start, end, a=3, b=4, c=5


def _table(rows: dict[int, dict[int, float]]) -> torch.Tensor:
    table = torch.zeros(V, V)
    for last, nexts in rows.items():
        for token, p in nexts.items():
            table[last, token] = p
    return table


# Greedy takes a (0.5) and then can only end weakly; b (0.4) then END (0.9) is the best caption: 0.36.
GREEDY_WRONG = _table({START: {3: 0.5, 4: 0.4, END: 0.1}, 3: {5: 0.4, 4: 0.3, END: 0.3},
                       4: {END: 0.9, 5: 0.1}, 5: {END: 0.5, 3: 0.5}})
# END at once (0.5) beats a, END (0.5 · 0.9 = 0.45) on the plain sum, not after length normalisation.
SHORT_OR_LONG = _table({START: {END: 0.5, 3: 0.5}, 3: {END: 0.9, 4: 0.1}, 4: {END: 1.0}, 5: {END: 1.0}})


def _brute_force(table: torch.Tensor, max_length: int) -> tuple[list[int], float]:
    """The most likely caption of ≤ max_length tokens by enumeration (one that never ends counts as is)."""
    log = table.clamp(min=1e-12).log()
    best, best_score = [], -math.inf
    for length in range(1, max_length + 1):
        for tokens in itertools.product(range(V), repeat=length):
            if END in tokens[:-1] or (tokens[-1] != END and length < max_length):
                continue
            score = sum(log[a, b].item() for a, b in zip((START, *tokens[:-1]), tokens))
            if score > best_score:
                best, best_score = [t for t in tokens if t != END], score
    return best, best_score


def test_beam_beats_greedy_where_greedy_is_wrong_and_finds_the_best_caption():
    decoder, image = ToyDecoder(GREEDY_WRONG[None]), torch.tensor([0])
    words, score = greedy(decoder, image, max_length=4)
    assert words.tolist() == [[3, 5]] and score.item() == pytest.approx(math.log(0.5 * 0.4 * 0.5))
    words, score = beam_search(decoder, image, beam_size=3, max_length=4)
    assert words.tolist() == [[4]] and score.item() == pytest.approx(math.log(0.4 * 0.9))
    best, best_score = _brute_force(GREEDY_WRONG, 4)
    assert (words[0].tolist(), score.item()) == (best, pytest.approx(best_score))


def test_beam_of_one_is_greedy():
    torch.manual_seed(0)
    tables = torch.rand(5, V, V) ** 4  # peaked random chains, one per image
    decoder, images = ToyDecoder(tables / tables.sum(-1, keepdim=True)), torch.arange(5)
    for penalty in (0.0, 0.7):
        g_words, g_scores = greedy(decoder, images, max_length=7, length_penalty=penalty)
        b_words, b_scores = _beam(decoder, images, 1, 7, penalty, START, END, PAD)  # the general code, beam 1
        assert torch.equal(g_words, b_words) and torch.allclose(g_scores, b_scores)
    net = create_model("showtell", feature_dim=8, vocab_size=12, word_dim=8, hidden=16).eval()
    feats = torch.randn(4, 8)
    assert torch.equal(greedy(net, feats, max_length=6)[0], _beam(net, feats, 1, 6, 0.0, START, END, PAD)[0])


def test_length_penalty_changes_the_choice():
    decoder, image = ToyDecoder(SHORT_OR_LONG[None]), torch.tensor([0])
    words, score = beam_search(decoder, image, beam_size=2, max_length=4)
    assert words.shape == (1, 0) and score.item() == pytest.approx(math.log(0.5))  # the empty caption
    words, score = beam_search(decoder, image, beam_size=2, max_length=4, length_penalty=1.0)
    # END alone: log 0.5 / 1 = −0.693; a END: log 0.45 / (7/6) = −0.684: the longer caption wins.
    assert words.tolist() == [[3]] and score.item() == pytest.approx(math.log(0.45) / (7 / 6))


def test_batched_search_equals_one_image_at_a_time():
    torch.manual_seed(1)
    tables = torch.rand(4, V, V) ** 3
    tables = torch.cat([GREEDY_WRONG[None], SHORT_OR_LONG[None], tables / tables.sum(-1, keepdim=True)])
    decoder, images = ToyDecoder(tables), torch.arange(6)
    words, scores = beam_search(decoder, images, beam_size=3, max_length=5, length_penalty=0.5)
    for i in range(6):
        one_words, one_score = beam_search(decoder, images[i:i + 1], beam_size=3, max_length=5, length_penalty=0.5)
        row = words[i][: one_words.shape[1]]
        assert torch.equal(row, one_words[0]) and not words[i][one_words.shape[1]:].any()
        assert scores[i].item() == pytest.approx(one_score.item())


@pytest.mark.parametrize("name", ["showtell", "attend"])
def test_networks_search_batched_as_one_at_a_time(name):
    torch.manual_seed(0)
    net = create_model(name, feature_dim=8, vocab_size=15, word_dim=8, hidden=16, **(
        {"attention_dim": 8} if name == "attend" else {})).eval()
    feats = torch.randn(5, 3, 8) if name == "attend" else torch.randn(5, 8)
    words, scores = beam_search(net, feats, beam_size=3, max_length=6)
    assert words.shape[0] == 5 and words.shape[1] <= 6 and not (words == END).any()
    for i in range(5):
        one_words, one_score = beam_search(net, feats[i:i + 1], beam_size=3, max_length=6)
        assert words[i].tolist()[: one_words.shape[1]] == one_words[0].tolist()
        assert scores[i].item() == pytest.approx(one_score.item(), abs=1e-5)
    # The score is the model's log-probability of the words returned, and of END when fewer than 6 came.
    for i in range(5):
        caption = [w for w in words[i].tolist() if w != PAD]
        sequence = [START, *caption] + ([END] if len(caption) < 6 else [])
        tokens = torch.tensor([sequence + [PAD]])  # forward predicts tokens[:, 1:]: the last input is unused
        log_probs = _logits(net(feats[i:i + 1], tokens)).log_softmax(-1)[0]
        expected = sum(log_probs[t, token].item() for t, token in enumerate(sequence[1:]))
        assert scores[i].item() == pytest.approx(expected, abs=1e-4)


def test_decoding_settings_are_checked():
    decoder = ToyDecoder(GREEDY_WRONG[None])
    with pytest.raises(ConfigError, match="beam size must be a whole number ≥ 1, got 0"):
        beam_search(decoder, torch.tensor([0]), beam_size=0)
    with pytest.raises(ConfigError, match="max_length"):
        greedy(decoder, torch.tensor([0]), max_length=0)


# ---- scheduled sampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["showtell", "attend"])
def test_scheduled_sampling(name):
    torch.manual_seed(0)
    net = create_model(name, feature_dim=8, vocab_size=15, word_dim=8, hidden=16).eval()
    feats = torch.randn(3, 4, 8) if name == "attend" else torch.randn(3, 8)
    tokens, _ = _captions([[4, 5, 6, 7], [8, 9], [10]], 6)
    teacher = _logits(net(feats, tokens))
    if name == "showtell":  # sample_prob 0 on the word-by-word path: teacher forcing again
        assert torch.allclose(net._scheduled(feats, tokens, 0.0), teacher, atol=1e-5)
    else:
        assert torch.allclose(_logits(net(feats, tokens, sample_prob=1e-9)), teacher, atol=1e-5)
    # sample_prob 1: every input after START is the model's own greedy word, as greedy decoding feeds it.
    sampled = _logits(net(feats, tokens, sample_prob=1.0))
    state, words = net.init_state(feats), torch.full((3,), START)
    for t in range(tokens.shape[1] - 1):
        log_probs, state = net.step(words, state)
        assert torch.allclose(sampled[:, t].log_softmax(-1), log_probs, atol=1e-5)
        words = log_probs.argmax(-1)
    assert not torch.allclose(sampled, teacher, atol=1e-3)


# ---- word vectors --------------------------------------------------------------------------------------

def test_glove_and_word2vec_text_files(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\ndog 1 2 3\nDog 7 8 9\ncat -1 -2 -3.5\n")
    words = ["<pad>", "dog", "cat", "zebra"]
    vectors, found = load_word_vectors(glove, words, 3)
    assert found == 2 and vectors.shape == (4, 3)
    assert vectors[1].tolist() == [1, 2, 3] and vectors[2].tolist() == [-1, -2, -3.5]  # exact beats "Dog"
    again, _ = load_word_vectors(glove, words, 3)
    assert torch.equal(vectors, again)  # rows of missing words come from a fixed seed
    assert 0 < vectors[3].abs().max() < 0.6  # N(0, 0.1²)
    word2vec = tmp_path / "vectors.txt"
    word2vec.write_text("3 2\nDog 1 2\nZebra 3 4\ndog 5 6\n")  # cased, as GoogleNews
    vectors, found = load_word_vectors(word2vec, words, 2)
    assert found == 2 and vectors[1].tolist() == [5, 6]  # "dog" exactly, though "Dog" came first
    assert vectors[3].tolist() == [3, 4]  # "zebra" through its lower-case form


def test_word_vector_file_mistakes(tmp_path):
    glove = tmp_path / "glove.50d.txt"
    glove.write_text("dog 1 2 3\ncat 4 5 6\n")
    with pytest.raises(ConfigError, match=r"glove\.50d\.txt has 3-dimensional vectors, the model's words have 300"):
        load_word_vectors(glove, ["dog"], 300)
    word2vec = tmp_path / "w2v.txt"
    word2vec.write_text("2 4\ndog 1 2 3 4\n")
    with pytest.raises(ConfigError, match="w2v.txt has 4-dimensional vectors, the model's words have 3"):
        load_word_vectors(word2vec, ["dog"], 3)
    with pytest.raises(ConfigError, match="missing.txt does not exist"):
        load_word_vectors(tmp_path / "missing.txt", ["dog"], 3)


# ---- a few training steps on a toy problem -------------------------------------------------------------

@pytest.mark.parametrize("name", ["showtell", "attend"])
def test_generators_learn_to_caption_two_images(name):
    torch.manual_seed(0)
    tokens, _ = _captions([[4, 5], [6, 7, 8]], 6)  # two "images": 0 is "4 5", 1 is "6 7 8"
    net = create_model(name, feature_dim=8, vocab_size=10, word_dim=16, hidden=32, dropout=0.0)
    feats = torch.randn(2, 3, 8) if name == "attend" else torch.randn(2, 8)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(_logits(net(feats, tokens)).reshape(-1, 10), tokens[:, 1:].reshape(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 2.0 and losses[-1] < 0.05 * losses[0]
    words, _ = beam_search(net.eval(), feats, beam_size=3, max_length=6)
    assert words.tolist() == [[4, 5, 0], [6, 7, 8]]


def test_rank_learns_to_match_images_and_sentences():
    torch.manual_seed(0)
    tokens, lengths = _captions([[4, 5], [6, 7, 8], [5, 4, 9], [8, 8]], 6)
    feats = torch.randn(4, 8)
    rank = create_model("rank", feature_dim=8, vocab_size=10, word_dim=8, joint_dim=16)
    optimizer = torch.optim.Adam(rank.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = ranking_loss(rank.similarity(*rank(feats, tokens, lengths)), 0.2, hardest=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.8 and losses[-1] < 0.1 * losses[0]
    scores = rank.similarity(*rank(feats, tokens, lengths))
    assert scores.argmax(1).tolist() == [0, 1, 2, 3] and scores.argmax(0).tolist() == [0, 1, 2, 3]


def test_banned_tokens_are_never_chosen():
    """A caption never holds <pad> or <start>, nor the tokens asked for (the task bans <unk>): with token 3
    banned, greedy and beam take b (4) then END, the best caption without it (0.4 · 0.9)."""
    decoder, image = ToyDecoder(GREEDY_WRONG[None]), torch.tensor([0])
    for search in (lambda **k: greedy(decoder, image, max_length=4, **k),
                   lambda **k: beam_search(decoder, image, beam_size=3, max_length=4, **k)):
        words, score = search(banned=(3,))
        assert words.tolist() == [[4]] and score.item() == pytest.approx(math.log(0.4 * 0.9))
    start_heavy = _table({START: {START: 0.6, PAD: 0.2, 5: 0.2}, 5: {END: 1.0}})
    words, _ = greedy(ToyDecoder(start_heavy[None]), image, max_length=3)
    assert words.tolist() == [[5]]
