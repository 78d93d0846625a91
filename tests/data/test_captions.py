import doctest
import json
import logging
import random

import pytest
import torch

import lienzo.data.captions as captions_module
from lienzo.data.captions import CaptionImage, detect_format, read_captions, write_karpathy
from lienzo.data.splits import holdout_splits
from lienzo.data.vocabulary import Vocabulary, coverage, encode_captions, tokenize
from lienzo.errors import ConfigError, DataError, ModelError, RunError


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def karpathy_image(name, split, sentences, **extra):
    return {"filename": name, "split": split, "imgid": 0,
            "sentences": [{"tokens": tokenize(s), "raw": s} for s in sentences], **extra}


def flickr8k_folder(tmp_path, with_orphan=True):
    """A token file of four images (one, like Flickr8k's own `*.jpg.1`, in no split list) and the three lists."""
    lines = ["b.jpg#1\tA dog runs.", "b.jpg#0\tThe dog is brown!", "a.jpg#0\tTwo kids, playing.", "c.jpg#0\tA cat.",
             "d.jpg#0\tA bird sings."]
    if with_orphan:
        lines.append("a.jpg.1#0\tAn orphan line.")
    token = tmp_path / "Flickr8k.token.txt"
    token.write_text("\n".join(lines) + "\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("a.jpg\nb.jpg\n")
    (tmp_path / "Flickr_8k.devImages.txt").write_text("c.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("d.jpg\n")
    return token


# --------------------------------------------------------------------------------------------- tokenisation

@pytest.mark.parametrize("text, tokens", [
    ("A dog, running!", ["a", "dog", "running"]),
    ("A man's T-shirt.", ["a", "mans", "tshirt"]),
    ("  Two  DOGS\tplay ; 3 balls ", ["two", "dogs", "play", "3", "balls"]),
    ("snake_case ...", ["snakecase"]),
    ("!!!", []),
])
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_module_doctests():
    assert doctest.testmod(captions_module).failed == 0


# --------------------------------------------------------------------------------------------- Karpathy json

def test_karpathy_reader_splits_restval_and_paths(tmp_path):
    path = write_json(tmp_path / "dataset_coco.json", {"dataset": "coco", "images": [
        karpathy_image("COCO_val2014_1.jpg", "test", ["A dog.", "A brown dog."], filepath="val2014", cocoid=1),
        karpathy_image("COCO_val2014_2.jpg", "restval", ["A cat."], filepath="val2014", cocoid=2),
        karpathy_image("COCO_train2014_3.jpg", "train", ["A bird."], filepath="train2014", cocoid=3),
        {"filename": "COCO_val2014_4.jpg", "filepath": "val2014", "split": "val", "cocoid": 4,
         "sentences": [{"tokens": ["a", "red", "bus"], "raw": "A RED bus!"}, {"raw": "Some bus, here."}]},
    ]})
    data = read_captions(path)
    assert data.format == "karpathy" and data.source == str(path)
    assert data.counts() == {"train": 2, "val": 1, "test": 1}
    assert [im.file for im in data.split("train")] == ["val2014/COCO_val2014_2.jpg", "train2014/COCO_train2014_3.jpg"]
    bus = data.split("val")[0]
    # the file's tokens are kept as they are; a sentence with only raw text is tokenised
    assert bus.image_id == "4" and bus.captions == ["A RED bus!", "Some bus, here."]
    assert bus.tokens == [["a", "red", "bus"], ["some", "bus", "here"]]
    assert data.split("test")[0].captions == ["A dog.", "A brown dog."]
    assert read_captions(path, restval="val").counts() == {"train": 1, "val": 2, "test": 1}
    dropped = read_captions(path, restval="drop")
    assert dropped.counts() == {"train": 1, "val": 1, "test": 1} and dropped.dropped == 1


def test_karpathy_flickr_ids_are_file_stems(tmp_path):
    path = write_json(tmp_path / "dataset_flickr8k.json", {"dataset": "flickr8k", "images": [
        karpathy_image("1000268201_693b08cb0e.jpg", "train", ["A child in a pink dress."])]})
    image = read_captions(path).images[0]
    assert (image.file, image.image_id, image.split) == ("1000268201_693b08cb0e.jpg", "1000268201_693b08cb0e", "train")


@pytest.mark.parametrize("data, message", [
    ({"dataset": "x"}, "not a Karpathy split file"),
    ({"images": [{"filename": "a.jpg", "split": "train"}]}, r"images\[0\] has no 'sentences'"),
    ({"images": [{"filename": "a.jpg", "split": "train", "sentences": []}]}, "empty 'sentences'"),
    ({"images": [{"filename": "a.jpg", "split": "dev", "sentences": [{"raw": "x"}]}]}, "split 'dev'"),
    ({"images": [{"split": "train", "sentences": [{"raw": "x"}]}]}, "no 'filename'"),
    ({"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"tokens": "a dog"}]}]}, "'tokens' is str"),
    ({"images": [{"filename": "a.jpg", "split": "train", "sentences": [{}]}]}, r"sentence 0 has no 'raw'"),
])
def test_karpathy_bad_files(tmp_path, data, message):
    path = write_json(tmp_path / "dataset_x.json", data)
    with pytest.raises(DataError, match=message) as err:
        read_captions(path, format="karpathy")
    assert str(path) in str(err.value)


def test_bad_json_and_missing_file(tmp_path):
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text('{"images": [')
    with pytest.raises(DataError, match=rf"{path}: not valid JSON"):
        read_captions(path)
    with pytest.raises(DataError, match="nothing.json: not found"):
        read_captions(tmp_path / "nothing.json")


# --------------------------------------------------------------------------------------------- Flickr8k

def test_flickr8k_reader(tmp_path, caplog):
    token = flickr8k_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lienzo"):
        data = read_captions(token)
    assert data.format == "flickr8k" and data.counts() == {"train": 2, "val": 1, "test": 1}
    assert data.dropped == 1 and "dropped 1 image(s) listed in no split file" in caplog.text
    by_file = {im.file: im for im in data.images}
    # captions ordered by their #N index, not by line order
    assert by_file["b.jpg"].captions == ["The dog is brown!", "A dog runs."]
    assert by_file["b.jpg"].tokens == [["the", "dog", "is", "brown"], ["a", "dog", "runs"]]
    assert (by_file["c.jpg"].split, by_file["c.jpg"].image_id) == ("val", "c")
    assert [im.file for im in data.images] == ["b.jpg", "a.jpg", "c.jpg", "d.jpg"]


def test_flickr8k_lemma_file_and_split_folder(tmp_path):
    flickr8k_folder(tmp_path)
    lemma = tmp_path / "text" / "Flickr8k.lemma.token.txt"
    lemma.parent.mkdir()
    lemma.write_text("a.jpg#0\ttwo kid play .\nb.jpg#0\tdog run .\nc.jpg#0\tcat .\nd.jpg#0\tbird sing .\n")
    with pytest.raises(DataError, match="Flickr_8k.trainImages.txt: missing"):
        read_captions(lemma)
    data = read_captions(lemma, split_file=str(tmp_path))
    assert data.counts() == {"train": 2, "val": 1, "test": 1} and data.dropped == 0
    assert read_captions(lemma, split_file=str(tmp_path / "Flickr_8k.devImages.txt")).counts() == data.counts()
    assert data.images[0].tokens == [["two", "kid", "play"]]


@pytest.mark.parametrize("token_lines, message", [
    ("a.jpg 0 A dog.\n", "line 1: expected 'image.jpg#N<TAB>caption'"),
    ("a.jpg#0\tA dog.\na.jpg#0\tA cat.\n", "line 2: a.jpg#0 appears twice"),
    ("a.jpg#0\t   \n", "line 1: empty caption"),
    ("\n\n", "no captions"),
])
def test_flickr8k_bad_token_file(tmp_path, token_lines, message):
    flickr8k_folder(tmp_path)
    token = tmp_path / "Flickr8k.token.txt"
    token.write_text(token_lines)
    with pytest.raises(DataError, match=message) as err:
        read_captions(token)
    assert str(token) in str(err.value)


def test_flickr8k_split_list_errors(tmp_path):
    token = flickr8k_folder(tmp_path)
    (tmp_path / "Flickr_8k.testImages.txt").write_text("d.jpg\nz.jpg\n")
    with pytest.raises(DataError, match=r"Flickr_8k.testImages.txt line 2: z.jpg has no captions"):
        read_captions(token)
    (tmp_path / "Flickr_8k.testImages.txt").write_text("a.jpg\n")
    with pytest.raises(DataError, match=r"testImages.txt line 1: a.jpg is also in the train list"):
        read_captions(token)


# --------------------------------------------------------------------------------------------- COCO captions

def coco_file(tmp_path, name="captions_val2014.json"):
    return write_json(tmp_path / name, {
        "images": [{"id": 10, "file_name": "COCO_val2014_10.jpg"}, {"id": 11, "file_name": "COCO_train2014_11.jpg"},
                   {"id": 12, "file_name": "12.jpg"}, {"id": 13, "file_name": "13.jpg"}],
        "annotations": [{"image_id": 10, "caption": "A dog."}, {"image_id": 12, "caption": "A cat, sitting."},
                        {"image_id": 10, "caption": "The dog runs. "}, {"image_id": 11, "caption": "A bus."}]})


def test_coco_reader_default_splits(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lienzo"):
        data = read_captions(coco_file(tmp_path))
    assert data.format == "coco" and data.dropped == 1  # image 13 has no captions
    splits = {im.image_id: im.split for im in data.images}
    # the image's name decides; 12.jpg names no split, so the annotation file's name (val2014) does
    assert splits == {"10": "val", "11": "train", "12": "val"}
    assert data.images[0].captions == ["A dog.", "The dog runs."] and data.images[0].file == "COCO_val2014_10.jpg"
    other = write_json(tmp_path / "captions_mine.json", json.loads(coco_file(tmp_path).read_text()))
    assert {im.image_id: im.split for im in read_captions(other).images}["12"] == "train"


def test_coco_reader_with_split_files(tmp_path):
    path = coco_file(tmp_path)
    karpathy = write_json(tmp_path / "dataset_coco.json", {"images": [
        karpathy_image("COCO_val2014_10.jpg", "restval", ["x"], filepath="val2014", cocoid=10),
        karpathy_image("renamed.jpg", "test", ["x"], cocoid=11),           # matched by cocoid
        karpathy_image("12.jpg", "val", ["x"])]})                          # matched by file name
    data = read_captions(path, split_file=str(karpathy))
    assert {im.image_id: im.split for im in data.images} == {"10": "train", "11": "test", "12": "val"}
    assert read_captions(path, split_file=str(karpathy), restval="drop").counts() == {"train": 0, "val": 1, "test": 1}
    listing = tmp_path / "splits.txt"
    listing.write_text("val2014/COCO_val2014_10.jpg test\n\n12.jpg train\n")
    data = read_captions(path, split_file=str(listing))
    assert {im.image_id: im.split for im in data.images} == {"10": "test", "12": "train"} and data.dropped == 2
    listing.write_text("12.jpg\n")
    with pytest.raises(DataError, match=r"splits.txt line 1: expected '<file_name> <split>'"):
        read_captions(path, split_file=str(listing))
    listing.write_text("12.jpg holdout\n")
    with pytest.raises(DataError, match=r"splits.txt: line 1 has split 'holdout'"):
        read_captions(path, split_file=str(listing))


@pytest.mark.parametrize("data, message", [
    ({"images": [], "annotations": {}}, "not a COCO captions file"),
    ({"images": [{"id": "1", "file_name": "a.jpg"}], "annotations": []}, r"images\[0\] 'id' is str, not int"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]},
     r"annotations\[0\] names image_id 2"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1}]}, r"annotations\[0\] has no 'caption'"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": " "}]}, "empty caption"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}, "no captioned images"),
])
def test_coco_bad_files(tmp_path, data, message):
    path = write_json(tmp_path / "captions_train2014.json", data)
    with pytest.raises(DataError, match=message) as err:
        read_captions(path, format="coco")
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------- CSV / JSONL

ROWS = [("dogs/1.jpg", "A dog."), ("cats/1.jpg", "A cat."), ("dogs/1.jpg", "A brown dog."), ("x.png", "Something.")]


def test_csv_with_split_column(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('image,caption,split\ndogs/1.jpg,"A dog, running.",train\ncats/1.jpg,A cat.,test\n'
                    "dogs/1.jpg,A brown dog.,train\n")
    data = read_captions(path)
    assert data.format == "csv" and data.counts() == {"train": 1, "val": 0, "test": 1}
    dog = data.images[0]
    assert (dog.file, dog.image_id, dog.captions) == ("dogs/1.jpg", "dogs/1", ["A dog, running.", "A brown dog."])
    assert dog.tokens == [["a", "dog", "running"], ["a", "brown", "dog"]]


def test_jsonl_reader(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text("\n".join(json.dumps({"image": f, "caption": c, "split": "val" if f == "x.png" else "train"})
                              for f, c in ROWS) + "\n\n")
    data = read_captions(path)
    assert data.format == "jsonl" and [im.file for im in data.split("val")] == ["x.png"]
    assert [len(im.captions) for im in data.images] == [2, 1, 1]


def test_holdout_is_stable_under_row_shuffles(tmp_path):
    rows = [(f"img{i:03d}.jpg", f"caption {j} of {i}") for i in range(100) for j in range(3)]
    splits = []
    for seed in (0, 1):
        random.Random(seed).shuffle(rows)
        path = tmp_path / f"rows{seed}.csv"
        path.write_text("image,caption\n" + "".join(f"{f},{c}\n" for f, c in rows))
        data = read_captions(path, val_fraction=0.1, test_fraction=0.2, seed=7)
        assert data.counts() == {"train": 70, "val": 10, "test": 20}
        assert all(len(im.captions) == 3 for im in data.images)
        splits.append({im.file: im.split for im in data.images})
    assert splits[0] == splits[1]
    other_seed = {im.file: im.split for im in read_captions(path, val_fraction=0.1, test_fraction=0.2, seed=8).images}
    assert other_seed != splits[0]


def test_holdout_counts_on_few_images():
    assert sorted(holdout_splits(["a", "b", "c", "d"], 0.05, 0.05, seed=0).values()) == ["test", "train", "train", "val"]
    assert set(holdout_splits(["a", "b"], 0.0, 0.0, seed=0).values()) == {"train"}
    with pytest.raises(DataError, match="2 image.* too few"):
        holdout_splits(["a", "b"], 0.05, 0.05, seed=0)
    with pytest.raises(ConfigError, match="val_fraction \\+ test_fraction"):
        holdout_splits(["a", "b", "c"], 0.5, 0.5, seed=0)


@pytest.mark.parametrize("name, text, message", [
    ("c.csv", "file,text\na.jpg,A dog.\n", "no image or caption column .*found file, text"),
    ("c.csv", "image,caption\na.jpg,\n", "line 2: no caption for a.jpg"),
    ("c.csv", "image,caption,split\na.jpg,A dog.,train\nb.jpg,A cat.,\n", "line 3: no split, while other rows"),
    ("c.csv", "image,caption,split\na.jpg,A dog.,dev\n", "line 2: split 'dev'"),
    ("c.csv", "image,caption,split\na.jpg,A dog.,train\na.jpg,A cat.,test\n", "line 3: a.jpg is in split test"),
    ("c.jsonl", '{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg"\n', "line 2: not valid JSON"),
    ("c.jsonl", '["a.jpg", "x"]\n', "line 1: expected an object"),
    ("c.jsonl", '{"caption": "x"}\n', "line 1: no image"),
    ("c.csv", "image,caption\n", "no captions"),
])
def test_table_bad_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        read_captions(path)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------- detection, options

def test_detect_format(tmp_path):
    assert detect_format(coco_file(tmp_path)) == "coco"
    assert detect_format(write_json(tmp_path / "d.json", {"images": [karpathy_image("a.jpg", "train", ["x"])]})) == "karpathy"
    assert detect_format(flickr8k_folder(tmp_path)) == "flickr8k"
    assert detect_format(tmp_path / "u.csv") == "csv" and detect_format(tmp_path / "u.jsonl") == "jsonl"
    with pytest.raises(DataError, match="neither Karpathy's"):
        detect_format(write_json(tmp_path / "e.json", {"images": [{"file": "a"}]}))
    with pytest.raises(DataError, match="u.tsv: cannot tell the caption format"):
        detect_format(tmp_path / "u.tsv")


def test_bad_options(tmp_path):
    path = coco_file(tmp_path)
    with pytest.raises(ConfigError, match="unknown caption format 'kaparthy'.*did you mean karpathy"):
        read_captions(path, format="kaparthy")
    with pytest.raises(ConfigError, match="restval='dev'"):
        read_captions(path, restval="dev")
    with pytest.raises(DataError, match="not a file"):
        read_captions(tmp_path)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        read_captions(path).split("dev")


# --------------------------------------------------------------------------------------------- writer

def test_write_karpathy_round_trip(tmp_path):
    images = [CaptionImage("scenes/000001.png", "train", ["A red bag.", "A bag, red."],
                           [["a", "red", "bag"], ["a", "bag", "red"]], "scenes/000001"),
              CaptionImage("000002.png", "val", ["A shoe."], [["a", "shoe"]], "000002"),
              CaptionImage("val2014/COCO_val2014_7.jpg", "test", ["A bus."], [["a", "bus"]], "7")]
    path = write_karpathy(tmp_path / "dataset_study.json", images, "study")
    data = read_captions(path)
    assert data.images == images and data.format == "karpathy"
    raw = json.loads(path.read_text())
    assert raw["dataset"] == "study" and raw["images"][0]["filepath"] == "scenes" and "filepath" not in raw["images"][1]
    assert [s["sentid"] for im in raw["images"] for s in im["sentences"]] == [0, 1, 2, 3]
    assert raw["images"][2]["cocoid"] == 7 and "cocoid" not in raw["images"][1]
    with pytest.raises(RunError, match="exists"):
        write_karpathy(path, images[:1], "study")
    write_karpathy(path, images[:1], "study", overwrite=True)
    assert read_captions(path).images == images[:1]
    with pytest.raises(ValueError, match="image_id 'x7'"):
        write_karpathy(tmp_path / "bad.json", [CaptionImage("a.png", "train", ["x"], [["x"]], "x7")], "study")
    assert not (tmp_path / "bad.json").exists()


# --------------------------------------------------------------------------------------------- vocabulary

TRAIN = [["a", "dog", "runs"], ["a", "dog", "sits"], ["a", "cat", "sits"], ["the", "cat"], ["a", "cat"]]
# counts: a 4, cat 3, dog 2, sits 2, runs 1, the 1


def test_vocabulary_build_order_and_min_count():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    assert vocab.words == ["<pad>", "<start>", "<end>", "<unk>", "a", "cat", "dog", "sits"]  # ties (dog, sits) alphabetical
    assert len(vocab) == 8 and vocab.index("<pad>") == 0 and vocab.index("<end>") == 2
    assert vocab.index("dog") == 6 and vocab.index("runs") == 3 and vocab.index("zebra") == 3
    assert Vocabulary.build(TRAIN, min_count=1).words[4:] == ["a", "cat", "dog", "sits", "runs", "the"]
    assert Vocabulary.build([["zoo", "bee"], ["zoo", "bee", "ant"]], min_count=1).words[4:] == ["bee", "zoo", "ant"]
    assert Vocabulary.build(TRAIN, min_count=1, max_size=6).words == ["<pad>", "<start>", "<end>", "<unk>", "a", "cat"]


def test_vocabulary_errors():
    with pytest.raises(ConfigError, match=r"empty: no training word occurs min_count=5 times \(min_count 1 keeps 6, "
                                          r"2 keeps 4, 3 keeps 2, 4 keeps 1, 5 keeps 0\)"):
        Vocabulary.build(TRAIN, min_count=5)
    with pytest.raises(ConfigError, match="max_size=4"):
        Vocabulary.build(TRAIN, max_size=4)
    with pytest.raises(ModelError, match="does not start with"):
        Vocabulary.from_dict({"words": ["a", "<start>", "<end>", "<unk>"]})
    with pytest.raises(ModelError, match="repeats"):
        Vocabulary.from_dict({"words": ["<pad>", "<start>", "<end>", "<unk>", "a", "a"]})


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    assert vocab.encode(["a", "cat", "runs"], max_length=10) == [1, 4, 5, 3, 2]
    assert vocab.encode(["a", "cat", "sits"], max_length=2) == [1, 4, 5, 2]
    assert vocab.decode(vocab.encode(["a", "dog", "sits"], 10)) == ["a", "dog", "sits"]
    assert vocab.decode(torch.tensor([1, 4, 0, 6, 2, 5, 5])) == ["a", "dog"]  # stops at <end>, skips <pad>
    with pytest.raises(ModelError, match="word id 99"):
        vocab.decode([1, 99])
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and again.min_count == 2 and again.index("sits") == 7


def test_encode_captions_pads_and_counts_truncation():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    ids, lengths, truncated = encode_captions(vocab, [["a", "dog", "sits", "here"], ["cat"], []], max_length=3)
    assert ids.dtype == torch.long and ids.tolist() == [[1, 4, 6, 7, 2], [1, 5, 2, 0, 0], [1, 2, 0, 0, 0]]
    assert lengths.tolist() == [5, 3, 2] and truncated == 1
    with pytest.raises(ConfigError, match="max_length=0"):
        encode_captions(vocab, [["a"]], max_length=0)


def test_coverage():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    assert coverage(vocab, TRAIN) == pytest.approx(11 / 13)  # runs and the are <unk>
    assert coverage(vocab, [["zebra"], []]) == 0.0 and coverage(vocab, []) == 0.0
