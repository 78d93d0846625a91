"""Inception Score, FID and KID on features with known answers, the image conversions, the Inception scorer
(torch-fidelity's network with random weights from a temp file: the real 91 MB file is not needed, and a
download attempt fails the test) and the domain scorer on a tiny classifier run."""

from __future__ import annotations

import shutil
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from lienzo import load_config
from lienzo.errors import ConfigError, DataError
from lienzo.metrics.generative import (INCEPTION_FILE, TORCH_FIDELITY_FILE, DomainScorer, InceptionScorer, Scorer,
                                       check_count, fid, generative_metrics, inception_score, inception_weights, kid,
                                       make_scorer, metrics_from_features, rgb_part, score_real, seeded_subset,
                                       to_uint8, to_unit)
from lienzo.models.build import load_run_network
from lienzo.tasks.classify import predict_logits
from lienzo.train import train
from tests.helpers import write_idx_dataset


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- Inception Score ---------------------------------------------------------------------------------

def test_is_of_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(50, 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)  # exact but for rounding


def test_is_of_confident_balanced_predictions_is_the_class_count():
    k = 4
    logits = torch.full((40, k), -60.0)
    logits[torch.arange(40), torch.arange(40) % k] = 0.0
    mean, std = inception_score(logits, splits=1)  # one split: the shuffle cannot unbalance it
    assert mean == pytest.approx(k, abs=1e-4) and std == 0.0


def test_is_by_hand_half_confident_half_undecided():
    # p = [1, 0] for half the images, [½, ½] for the others: p(y) = [¾, ¼];
    # KL = log(4/3) and ½·log(4/3), mean ¾·log(4/3), so IS = (4/3)^¾
    logits = torch.tensor([[0.0, -60.0], [0.0, 0.0]]).repeat(10, 1)
    assert inception_score(logits, splits=1)[0] == pytest.approx((4 / 3) ** 0.75, abs=1e-9)


def test_fewer_images_than_splits_is_a_config_error():
    with pytest.raises(ConfigError, match=r"n \(got 9\) must be at least the IS splits \(10\)"):
        inception_score(torch.zeros(9, 3))
    with pytest.raises(ConfigError, match=r"n \(got 5\).*\(8\)"):
        check_count(5, 8)
    check_count(8, 8)


# -- FID, KID --------------------------------------------------------------------------------------

def _whitened(n: int, d: int, seed: int) -> torch.Tensor:
    """Samples whose mean is exactly 0 and covariance exactly the identity (np.cov's n − 1)."""
    x = torch.randn(n, d, generator=_generator(seed), dtype=torch.float64)
    x = x - x.mean(0)
    chol = torch.linalg.cholesky(x.T @ x / (n - 1))
    return x @ torch.linalg.inv(chol).T


def test_fid_of_a_set_with_itself_is_zero():
    a = torch.randn(300, 16, generator=_generator(0))
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_identity_gaussians_is_the_squared_mean_shift():
    a, b = _whitened(500, 4, 1), _whitened(400, 4, 2)
    shift = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    # ‖d‖² + tr(I) + tr(I) − 2·tr(I) = 25
    assert fid(a, b + shift) == pytest.approx(25.0, abs=1e-3)


def test_fid_refuses_features_of_different_scorers():
    with pytest.raises(DataError, match="16 and 8 dimensions"):
        fid(torch.zeros(5, 16), torch.zeros(5, 8))
    with pytest.raises(DataError, match="at least 2 images"):
        fid(torch.zeros(1, 4), torch.zeros(5, 4))


def test_kid_by_hand_with_the_subset_clipped_to_the_smaller_set():
    # k(x, y) = (x·y/1 + 1)³; X = {0, 1}, Y = {2, 3}; subset size 1000 clipped to 2 (every subset is all):
    # k(0,1) = 1, k(2,3) = 343, k(X, Y) = 1 + 1 + 27 + 64 = 93 → (2 + 686)/(2·1) − 2·93/4 = 297.5
    mean, std = kid(torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [3.0]]), subsets=3)
    assert mean == pytest.approx(297.5) and std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    a, b = torch.randn(2, 400, 8, generator=_generator(3))
    same, _ = kid(a, b, subsets=20, subset_size=200)
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same) < 0.03
    assert shifted > 0.5


# -- images ----------------------------------------------------------------------------------------

def test_to_uint8_by_hand_and_the_round_trip_from_uint8_is_exact():
    x = torch.tensor([-1.0, 0.0, 1.0, -2.0, 2.0, 0.999, -0.999])
    assert to_uint8(x).tolist() == [0, 128, 255, 0, 255, 255, 0]
    u = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(u.float() / 127.5 - 1), u)
    assert torch.equal(to_uint8(u), u)


def test_to_unit_maps_both_ranges_to_zero_one():
    assert to_unit(torch.tensor([-1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.5, 1.0, 1.0]
    assert to_unit(torch.tensor([0, 51, 255], dtype=torch.uint8)).tolist() == pytest.approx([0.0, 0.2, 1.0])


class ChannelMeans(Scorer):
    """A scorer whose features are the images' channel means and whose logits are confident in the
    brightest channel: known answers for the plumbing."""

    name = "channel-means"

    def _score(self, batch):
        means = to_unit(batch).mean(dim=(2, 3))
        return means, 60.0 * means


def _one_hot_images(n: int, channels: int = 3) -> torch.Tensor:
    images = -torch.ones(n, channels, 4, 4)
    images[torch.arange(n), torch.arange(n) % 3] = 1.0
    return images


def test_generative_metrics_from_a_tensor_or_batches_and_against_real():
    scorer, fake = ChannelMeans(), _one_hot_images(30)
    scorer.batch_size = 7
    results = generative_metrics(scorer, fake, splits=1)
    assert results == {"is_mean": pytest.approx(3.0, abs=1e-4), "is_std": 0.0, "count": 30}
    assert generative_metrics(scorer, fake.split(11), splits=1) == results
    real = score_real(scorer, to_uint8(fake))  # real data may come as uint8
    with_real = generative_metrics(scorer, iter(fake.split(4)), real, splits=1, kid_subset_size=10)
    assert set(with_real) == {"is_mean", "is_std", "count", "fid", "kid_mean", "kid_std"}
    assert with_real["fid"] == pytest.approx(0.0, abs=1e-6)
    assert with_real == metrics_from_features(*scorer.features(fake), real[0], splits=1, kid_subset_size=10)


def test_scorers_refuse_images_they_cannot_score():
    with pytest.raises(DataError, match=r"C in \(1, 2, 3, 4\), got shape \(2, 5, 4, 4\)"):
        ChannelMeans().features(torch.zeros(2, 5, 4, 4))
    with pytest.raises(DataError, match="int32"):
        ChannelMeans().features(torch.zeros(2, 3, 4, 4, dtype=torch.int32))
    with pytest.raises(DataError, match="no images"):
        ChannelMeans().features([])


def test_the_mask_channel_is_left_out_of_scoring():
    images = torch.arange(2 * 4 * 2 * 2, dtype=torch.uint8).view(2, 4, 2, 2)
    assert torch.equal(rgb_part(images), images[:, :3])            # RGB + mask → RGB
    assert torch.equal(rgb_part(images[:, :2]), images[:, :1])     # grey + mask → grey
    for channels in (1, 3):
        assert torch.equal(rgb_part(images[:, :channels]), images[:, :channels])
    grey = torch.tensor([0.0, 0.5]).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    grey_mask = torch.cat([grey, torch.ones(2, 1, 4, 4)], dim=1)  # grey + mask GANs' samples score as their grey
    features, _ = ChannelMeans().features(rgb_part(grey_mask))
    assert features[:, 0].tolist() == [0.5, 0.75]


def test_seeded_subset_is_a_fixed_random_draw_in_file_order():
    images = torch.arange(100).view(100, 1, 1, 1)
    picked = seeded_subset(images, 10, seed=3).flatten().tolist()
    assert len(set(picked)) == 10 and picked == sorted(picked) and picked != list(range(10))
    assert seeded_subset(images, 10, seed=3).flatten().tolist() == picked
    assert seeded_subset(images, 10, seed=4).flatten().tolist() != picked
    expected = sorted(torch.randperm(100, generator=torch.Generator().manual_seed(3))[:10].tolist())
    assert picked == expected
    assert seeded_subset(images, 100, seed=3) is images and seeded_subset(images, 500, seed=3) is images


# -- the Inception scorer --------------------------------------------------------------------------

def test_missing_inception_weights_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(DataError) as err:
        make_scorer("inception")
    message = str(err.value)
    assert INCEPTION_FILE in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "never downloads" in message and "\n" not in message
    with pytest.raises(DataError, match=f"{tmp_path}/mine.pth not found"):
        make_scorer(f"inception:{tmp_path}/mine.pth")


def test_inception_weights_are_found_under_either_name_in_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / TORCH_FIDELITY_FILE).write_bytes(b"")
    assert inception_weights() == folder / TORCH_FIDELITY_FILE
    (folder / INCEPTION_FILE).write_bytes(b"")
    assert inception_weights() == folder / INCEPTION_FILE


def test_a_file_that_is_not_the_inception_weights_is_a_data_error(tmp_path):
    torch.save({"fc.weight": torch.zeros(10, 2048)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="other.pth: not the FID Inception-v3 weights"):
        InceptionScorer(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pth: not a readable Inception weights file"):
        InceptionScorer(tmp_path / "junk.pth")


def _never_download(*args, **kwargs):
    raise AssertionError("torch-fidelity tried to download the Inception weights")


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    """InceptionScorer on torch-fidelity's network with random weights, saved in its format (fp16: half the size)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        network = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in network.modules():  # He initialisation: with PyTorch's default the features vanish (~1e-8)
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save({k: v.half() for k, v in network.state_dict().items()}, path)
    with mock.patch.object(fe, "load_state_dict_from_url", _never_download):
        return make_scorer(f"inception:{path}")


def test_inception_scorer_features_logits_and_channels(inception):
    assert inception.name == "inception"
    rgb = torch.rand(1, 3, 32, 32, generator=_generator(4)) * 2 - 1
    grey = rgb[:, :1]
    features, logits = inception.features(torch.cat([rgb, grey.expand(-1, 3, -1, -1)]))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert (features[0] - features[1]).abs().max() > 0.1  # the images are told apart: the checks below mean something
    mask = torch.rand(1, 1, 32, 32, generator=_generator(5)) * 2 - 1
    # RGB + mask as uint8 (real data): scored on the RGB part, the same bytes going in as from [-1, 1]
    with_mask = inception.features(to_uint8(torch.cat([rgb, mask], dim=1)))
    assert torch.allclose(with_mask[0], features[:1], rtol=1e-5, atol=1e-5)
    assert torch.allclose(with_mask[1], logits[:1], rtol=1e-5, atol=1e-5)
    grey_features = inception.features(grey)[0]  # one channel: repeated to three
    assert torch.allclose(grey_features, features[1:], rtol=1e-5, atol=1e-5)
    grey_mask = inception.features(torch.cat([grey, mask], dim=1))[0]  # grey + mask: scored on the grey
    assert torch.allclose(grey_mask, features[1:], rtol=1e-5, atol=1e-5)


# -- the domain scorer -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A BaseNet trained for one epoch on tiny 28×28 grey images: a 1-channel classifier run."""
    tmp = tmp_path_factory.mktemp("domain")
    root = write_idx_dataset(tmp / "data", n_train=60, n_test=30)
    return train(load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=20", "trainer.max_epochs=1", "trainer.progress=false",
        "data.val_fraction=0", f"run.dir={tmp / 'runs'}", "run.name=tiny"]))


def test_domain_scorer_logits_are_the_classifiers_own_predictions(classifier_run):
    scorer = make_scorer(str(classifier_run))
    assert isinstance(scorer, DomainScorer) and scorer.name == "domain:tiny"
    net = load_run_network(classifier_run)
    images = torch.randint(0, 256, (6, 1, 28, 28), generator=_generator(6), dtype=torch.uint8)
    expected = predict_logits(net.model, images, net.mean, net.std, precision="32", accelerator="cpu",
                              channels_last=False)
    features, logits = scorer.features(images.float() / 127.5 - 1)  # the generator's range
    assert features.shape == (6, net.model.num_features) and logits.shape == (6, len(net.class_names))
    assert torch.allclose(logits, expected, atol=1e-4)
    head = net.model.get_classifier()  # the features are the pre-logits: BaseNet's logits are head(features)
    assert torch.allclose(head(features), logits, atol=1e-5)


def test_domain_scorer_brings_rgb_and_mask_images_to_the_run_input(classifier_run):
    scorer = DomainScorer(classifier_run, batch_size=4)
    net = load_run_network(classifier_run)
    rgb = torch.rand(5, 3, 32, 32, generator=_generator(7)) * 2 - 1
    unit = (rgb + 1) / 2
    grey = 0.299 * unit[:, 0:1] + 0.587 * unit[:, 1:2] + 0.114 * unit[:, 2:3]  # ITU-R 601 luma
    grey = F.interpolate(grey, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    expected = predict_logits(net.model, grey, net.mean, net.std, precision="32", accelerator="cpu",
                              channels_last=False)
    _, logits = scorer.features(rgb)
    assert torch.allclose(logits, expected, atol=1e-4)
    mask = torch.ones(5, 1, 32, 32)
    assert torch.equal(scorer.features(torch.cat([rgb, mask], dim=1))[1], logits)
    grey32 = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]  # a grey + mask sample: its grey
    assert torch.equal(scorer.features(torch.cat([grey32, mask], dim=1))[1], scorer.features(grey32)[1])


def test_domain_scorer_refuses_a_run_of_another_task(classifier_run, tmp_path):
    other = tmp_path / "gan"
    shutil.copytree(classifier_run, other)
    for path in (other / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, weights_only=False)
        checkpoint["hyper_parameters"]["config"]["task"] = "generate"
        torch.save(checkpoint, path)
    with pytest.raises(ConfigError, match="a generate run; a domain scorer needs a classify run"):
        DomainScorer(other)


def test_make_scorer_names_the_forms_it_takes(tmp_path):
    with pytest.raises(ConfigError, match=r"scorer 'incepton': expected 'inception', 'inception:<weights file>' or"):
        make_scorer("incepton")
    with pytest.raises(ConfigError, match="no such folder"):
        make_scorer(str(tmp_path / "missing_run"))
