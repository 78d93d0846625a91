"""Every kind of page through its template, with names, captions and file names that hold markup: a classify,
generate and caption run's report.html (through each task's own sections), runs compared, and each study's
study.html. What a user supplied shows as text, never as markup, in the HTML and in a browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lienzo.evaluate import refresh_report
from lienzo.report.compare import compare_runs
from lienzo.report.html import write_report
from lienzo.runs import write_history, write_json
from lienzo.tasks import config_from_dict, get_task
from tests.helpers import write_png

SCRIPT = "<script>alert(1)</script>"  # a class name
CAPTION = "a cat & a <b>dog</b>"  # a caption
FILE = "cat & <b>dog.png"  # an image file name
HISTORY = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "lr": 0.1, "seconds": 3.0},
           {"epoch": 2, "train_loss": 0.7, "val_loss": 0.9, "lr": 0.05, "seconds": 3.0}]


def _run_page(run: Path, overrides: dict, metrics: dict, history=HISTORY, extras=None) -> Path:
    """report.html of a run folder through its task's own sections, as finishing a run writes it."""
    cfg = config_from_dict({**overrides, "run": {"dir": str(run.parent), "name": run.name}})
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(json.dumps(cfg.to_dict()))  # JSON is YAML: what refresh_report reads
    write_json(run / "metrics.json", metrics)
    write_history(run / "history.csv", history)
    report = get_task(cfg.task).report(run, cfg, metrics, history, None, extras)
    return write_report(run, cfg, metrics, history, report)


def _split(classes: list[str], top1: float) -> dict:
    k = len(classes)
    confusion = (np.eye(k, dtype=int) * 8 + 1).tolist()
    per_class = {c: {"top1": top1, "top5": 1.0, "cross_entropy": 0.4, "count": 8 + k} for c in classes}
    return {"top1": top1, "top5": 1.0, "cross_entropy": 0.41, "count": k * (8 + k), "confusion": confusion,
            "per_class": per_class}


def classify_page(folder: Path) -> Path:
    classes = [SCRIPT, "Trouser & Co", "Bag"]
    metrics = {"task": "classify", "arch": "basenet", "parameters": 1234, "precision": "32", "epochs": 2,
               "train_seconds": 6.0, "splits": ["val", "test"], "class_names": classes,
               "val": _split(classes, 0.8), "test": _split(classes, 0.75)}
    return _run_page(folder / "classify", {"data": {"name": "fashion_mnist"}}, metrics)


def generate_page(folder: Path) -> Path:
    plots = folder / "generate" / "plots"
    for step in (2, 4):
        write_png(plots / f"samples_step{step:07d}.png", np.full((34, 34), 40 * step, np.uint8))
    test = {"fid": 31.5, "is_mean": 2.1, "is_std": 0.1, "kid_mean": 0.02, "samples": 100, "scorer": SCRIPT,
            "reference": "test", "real_is_mean": 3.0, "real_is_std": 0.1, "real_fid": 1.0, "real_kid_mean": 0.0}
    metrics = {"task": "generate", "parameters": 2_000_000, "input_shape": [1, 32, 32], "epochs": 2,
               "splits": ["test"], "test": test}
    history = [{"epoch": 1, "train_wasserstein": 1.0, "val_fid": 40.0}, {"epoch": 2, "train_wasserstein": 0.5, "val_fid": 31.5}]
    return _run_page(folder / "generate", {"task": "generate"}, metrics, history)


def caption_page(folder: Path, model: str) -> Path:
    images = folder / "images"
    write_png(images / FILE, np.full((40, 40, 3), 200, np.uint8))
    overrides = {"task": "caption", "caption": {"model": model}, "data": {"root": str(images), "captions": "caps & <b>.json"}}
    if model == "showtell":
        test = {"bleu1": 0.5, "bleu4": 0.2, "cider": 0.9, "beam": 3, "images": 1, "unique_captions": 1}
        examples = [{"file": FILE, "generated": CAPTION, "references": [CAPTION, "two dogs"]},
                    {"file": "missing & <i>gone</i>.png", "generated": "x", "references": ["y"]}]
    else:
        test = {f"{d}_{k}": 50.0 for d in ("i2t", "t2i") for k in ("r1", "r5", "r10", "medr")}
        test.update(rsum=300.0, images=1, captions=2)
        examples = {"annotate": [{"file": FILE, "references": [CAPTION, "two dogs"],
                                  "retrieved": [{"sentence": CAPTION, "right": True}, {"sentence": "a <i>bird</i>", "right": False}]}],
                    "search": [{"sentence": CAPTION, "retrieved": [{"file": FILE, "right": True}, {"file": FILE, "right": False}]}]}
    metrics = {"task": "caption", "epochs": 2, "splits": ["test"], "test": test}
    return _run_page(folder / f"caption_{model}", overrides, metrics, extras={"test": {"_examples": examples}})


def compare_page(folder: Path) -> Path:
    runs = []
    for name, lr in (("<b>tuned & co", 0.1), ("plain", 0.01)):  # a folder's name holds no "/"
        run = folder / "runs" / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(json.dumps({"task": "classify", "data": {"name": SCRIPT}}))
        write_history(run / "history.csv", [{**row, "lr": lr} for row in HISTORY])
        runs.append(run)
    return compare_runs(runs, folder / "compare.html")


def masks_study_page(folder: Path) -> Path:
    from lienzo.tasks.generate.study import study_page

    row = {"name": SCRIPT, "channels": 3, "is_mean": 2.0, "is_std": 0.1, "fid": 30.0, "kid_mean": 0.01, "kid_std": 0.001,
           "minutes": 1.0, "samples": 100}
    checks = {"verdict": CAPTION, "fid_gap": -1.0, "mask_lowers_fid": True, "is_gap": 0.2, "is_gap_beyond_std": False,
              "kid_gap_beyond_std": False}
    write_png(folder / "real" / "grid.png", np.zeros((16, 16), np.uint8))
    study = {"settings": {"arch": "wgan_resnet", "maps": 8, "steps": 4, "size": 32, "n_train": 10, "note": CAPTION},
             "scorer": {"run": "runs/scorer", "top1": 0.9}, "rows": [row, row, row], "reference": "test",
             "checks": checks, "grids": {"real": ["real/grid.png"], FILE: ["real/grid.png"]}, "photos": [FILE],
             "seconds": {"total": 60.0}}
    path = folder / "masks.html"
    path.write_text(study_page(study, SCRIPT))
    return path


def captions_study_page(folder: Path) -> Path:
    from lienzo.tasks.caption.study import study_page

    retrieval = {"name": SCRIPT, **{f"{d}_{k}": 10.0 for d in ("i2t", "t2i") for k in ("r1", "r5", "r10", "medr")}}
    study = {"retrieval": [retrieval], "generation": [{"name": CAPTION, "bleu4": 0.1, "rouge_l": 0.2, "cider": 0.3, "distinct": 4}],
             "checks": {"retrieval_far_above_random": True, "generation_beats_nearest_neighbour_cider": False},
             "image_net": {"top1": 0.5}, "seconds": {"total": 120.0},
             "examples": [{"file": f"images/{FILE}", "generated": CAPTION, "references": [CAPTION, "two"]}]}
    path = folder / "captions.html"
    path.write_text(study_page(study, "study & <b>captions</b>"))
    return path


def all_pages(folder: Path) -> dict[str, Path]:
    """One page of every kind, written under `folder`."""
    return {"classify": classify_page(folder), "generate": generate_page(folder),
            "caption_showtell": caption_page(folder, "showtell"), "caption_rank": caption_page(folder, "rank"),
            "compare": compare_page(folder), "masks_study": masks_study_page(folder),
            "captions_study": captions_study_page(folder)}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    return all_pages(tmp_path_factory.mktemp("pages"))


def _markup_free(page: str) -> None:
    """None of the hostile strings reached the page as markup: no script at all, no user <b>/<i>."""
    assert "<script" not in page.lower()
    assert "<b>dog" not in page and "<i>bird" not in page and "<i>gone" not in page
    assert "<b>captions" not in page and "<b>.json" not in page


def test_a_class_named_script_is_text_on_a_classify_page(pages):
    page = pages["classify"].read_text()
    _markup_free(page)
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page  # the per-class table's first cell
    assert "<td>Trouser &amp; Co</td>" in page
    for title in ("Metrics", "Training curves", "Confusion matrix (test)", "Per-class accuracy (test)", "Per class (test)",
                  "History", "Configuration"):
        assert f"<h2>{title}</h2>" in page
    assert page.index("<h2>Metrics</h2>") < page.index("<h2>Training curves</h2>") < page.index("<h2>History</h2>")
    assert "<div class=\"card\">test top-1<b>75.00 %</b></div>" in page
    assert 'src="plots/confusion.png" alt="Confusion matrix (test)"' in page
    assert (pages["classify"].parent / "plots" / "confusion.png").is_file()


def test_captions_and_file_names_are_text_on_caption_pages(pages):
    showtell = pages["caption_showtell"].read_text()
    _markup_free(showtell)
    assert "<b>a cat &amp; a &lt;b&gt;dog&lt;/b&gt;</b>" in showtell  # the generated caption, bold
    assert "a cat &amp; a &lt;b&gt;dog&lt;/b&gt;<br>two dogs" in showtell  # the human ones, a line each
    assert '<img src="plots/examples/cat &amp; &lt;b&gt;dog.png" alt="cat &amp; &lt;b&gt;dog.png" width="128">' in showtell
    assert "<i>missing &amp; &lt;i&gt;gone&lt;/i&gt;.png</i>" in showtell  # an unreadable image: its name
    assert "caps &amp; &lt;b&gt;.json" in showtell  # the subtitle
    rank = pages["caption_rank"].read_text()
    _markup_free(rank)
    assert "<ol><li><b>✓ a cat &amp; a &lt;b&gt;dog&lt;/b&gt;</b></li><li>a &lt;i&gt;bird&lt;/i&gt;</li></ol>" in rank
    assert re.search(r'alt="cat &amp; &lt;b&gt;dog.png" width="96">✓ <img [^>]+width="96"></td>', rank)
    assert "<p>1 images, 2 captions.</p>" in rank
    assert len(list((pages["caption_rank"].parent / "plots" / "examples").glob("*.png"))) == 1


def test_generate_page_escapes_its_scorer_and_shows_the_samples(pages):
    page = pages["generate"].read_text()
    _markup_free(page)
    assert "<h2>Inception Score and FID (100 samples, &lt;script&gt;alert(1)&lt;/script&gt; features, against the " \
           "test split)</h2>" in page
    assert "<h2>Samples after 4 generator steps</h2>" in page and 'src="plots/samples_step0000004.png"' in page
    assert 'src="plots/samples_over_training.png"' in page and "<td>real training images (the bound)</td>" in page


def test_generate_page_without_scores_says_how_to_get_them(tmp_path):
    run = tmp_path / "gan"
    metrics = {"task": "generate", "parameters": 10, "input_shape": [1, 32, 32], "splits": ["test"], "test": {}}
    page = _run_page(run, {"task": "generate"}, metrics, history=[]).read_text()
    assert "<p>No IS/FID: set <code>gan.scorer</code> to a lienzo classifier run (domain features) or " \
           "<code>inception</code> with its weights file, then <code>lienzo evaluate RUN</code>.</p>" in page
    assert "Training curves" not in page and "History" not in page  # nothing logged: no curves, no table


def test_compare_page_escapes_run_names_and_values(pages):
    page = pages["compare"].read_text()
    _markup_free(page)
    assert "<h1>Runs compared</h1>" in page and page.count("<tr>") == 3
    assert "<td>&lt;b&gt;tuned &amp; co</td>" in page and "<b>tuned" not in page
    assert page.count("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>") == 2  # data.name
    assert 'src="data:image/png;base64,' in page  # the curves inline: one file


def test_study_pages_escape_what_they_show(pages):
    masks = pages["masks_study"].read_text()
    _markup_free(masks)
    assert "<title>lienzo · &lt;script&gt;alert(1)&lt;/script&gt;</title>" in masks
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in masks and "<h2>Real composites (test split)</h2>" in masks
    assert '<figure><img src="real/grid.png" alt="RGB" width="340" class="pixelated"><figcaption>RGB</figcaption></figure>' in masks
    assert "<h2>cat &amp; &lt;b&gt;dog.png</h2>" in masks  # a grid's key without a caption of its own
    assert "<td>note</td><td>a cat &amp; a &lt;b&gt;dog&lt;/b&gt;</td>" in masks and "<h2>Settings</h2>" in masks
    assert "<p><b>The thesis&#39;s direction (the mask helps): a cat &amp; a &lt;b&gt;dog&lt;/b&gt;." in masks
    captions = pages["captions_study"].read_text()
    _markup_free(captions)
    assert "<h1>study &amp; &lt;b&gt;captions&lt;/b&gt;</h1>" in captions
    assert "| &lt;script&gt;alert(1)&lt;/script&gt; | 10.0 |" in captions  # the markdown tables, preformatted
    assert 'src="showtell/plots/examples/images_cat &amp; &lt;b&gt;dog.png" alt="images/cat &amp; &lt;b&gt;dog.png"' in captions


def test_a_refreshed_page_is_the_same_page(pages, tmp_path):
    """refresh_report redraws a run's page from its folder alone (no in-memory results): the same sections."""
    run = shutil.copytree(pages["caption_showtell"].parent, tmp_path / "caption_showtell")
    before = (run / "report.html").read_text()
    after = refresh_report(run).read_text()
    assert after == before


def test_templates_are_package_data():
    """The templates ship with the package and are found through it, not through the source tree."""
    import tomllib

    from lienzo.report import pages as pages_module

    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lienzo.report"]
    shipped = {p.name for pattern in patterns for p in (Path(pages_module.__file__).parent).glob(pattern)}
    used = set(pages_module.environment().list_templates())
    assert used == shipped == {"base.html", "macros.html", "page.html", "run.html"}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (`make browser` installs Debian's)")
    return found


def visible_text(page: Path, tmp_path: Path) -> str:
    """What a reader sees of `page` in headless Chromium: its document.body.innerText, and how many <script>
    elements it holds, read by a wrapper page that loads it in a frame (nothing is added to the page itself)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    wrapper = tmp_path / "wrapper.html"
    wrapper.write_text(
        "<!doctype html><html><body><pre id='out'></pre><iframe id='page'></iframe><script>\n"
        "const frame = document.getElementById('page');\n"
        "frame.onload = () => { const d = frame.contentDocument;\n"
        "  document.getElementById('out').textContent = 'SCRIPTS=' + d.getElementsByTagName('script').length + '\\n' + d.body.innerText; };\n"
        f"frame.src = {json.dumps(page.resolve().as_uri())};\n"
        "</script></body></html>")
    try:
        done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
                               "--virtual-time-budget=5000", "--dump-dom", wrapper.resolve().as_uri()],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # what a page whose markup ran alert() does: the dialog holds it
        pytest.fail(f"{page.name} did not finish loading in Chromium (a script's dialog?)")
    found = re.search(r"<pre id=\"out\">(.*?)</pre>", done.stdout, re.S)
    assert found and found.group(1), done.stdout[-2000:] + done.stderr[-2000:]
    return html.unescape(found.group(1))  # the dump is HTML: its text is what the reader saw


@pytest.mark.browser
def test_markup_in_names_and_captions_shows_as_text_in_chromium(pages, tmp_path):
    classify = visible_text(pages["classify"], tmp_path / "classify")
    assert classify.startswith("SCRIPTS=0\n")  # the class name made no script element
    assert SCRIPT in classify and "Trouser & Co" in classify and "Per class (test)" in classify
    caption = visible_text(pages["caption_showtell"], tmp_path / "caption")
    assert caption.startswith("SCRIPTS=0\n")
    assert CAPTION in caption and "missing & <i>gone</i>.png" in caption and "caps & <b>.json" in caption
    rank = visible_text(pages["caption_rank"], tmp_path / "rank")
    assert f"✓ {CAPTION}" in rank and "a <i>bird</i>" in rank
    for kind in ("compare", "masks_study", "captions_study"):
        text = visible_text(pages[kind], tmp_path / kind)
        assert text.startswith("SCRIPTS=0\n") and SCRIPT in text, kind
