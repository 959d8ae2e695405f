"""segedu.data.coco's COCO-format instances: pycocotools and FiftyOne read them, and they look like COCO.

The FiftyOne test starts a private mongod in a temporary folder and checks that none is left
running afterwards; run only the rest with ``pytest -m "not fiftyone"``. The tests of FiftyOne's
internals import FiftyOne but start no mongod.
"""

from __future__ import annotations

import collections
import importlib
import importlib.util
import itertools
import json
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segedu.data import (
    COCO_CATEGORIES,
    CocoFormatError,
    RealCocoSwitchError,
    fiftyone_dataset,
    fiftyone_environment,
    load_coco,
    load_real_coco_subset,
    semantic_label_map,
    write_coco_instances,
)
from segedu.data.coco import fiftyone_env, quiet_pycocotools

# The tests call pycocotools directly, and pycocotools <= 2.0.11 under numpy 2 warns on every decode
# (the masks are correct). segedu's own functions are quiet: see test_readers_keep_pycocotools_quiet.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "data" / "coco_synthetic"
# The arguments the committed copy was written with (see data/coco_synthetic/README.md).
COMMITTED_ARGS = dict(n_images=12, seed=0, split="val", min_size=96, max_size=224)


@pytest.fixture(scope="module")
def labels_path(tmp_path_factory) -> Path:
    return write_coco_instances(tmp_path_factory.mktemp("coco"))  # the defaults: 60 images, seed 0


@pytest.fixture(scope="module")
def coco(labels_path) -> COCO:
    return COCO(str(labels_path))  # plain pycocotools, not our wrapper


@pytest.fixture(scope="module")
def raw(labels_path) -> dict:
    return json.loads(labels_path.read_text())


def _names(raw):
    return {c["id"]: c["name"] for c in raw["categories"]}


# -- the format ------------------------------------------------------------------------------------


def test_layout_is_the_one_fiftyone_expects(labels_path, raw):
    assert labels_path.name == "labels.json" and labels_path.parent.name == "val"
    data = labels_path.parent / "data"
    assert sorted(p.name for p in data.iterdir()) == sorted(im["file_name"] for im in raw["images"])
    assert set(raw) == {"info", "licenses", "images", "annotations", "categories"}


def test_pycocotools_reads_it(coco, raw):
    assert len(coco.getImgIds()) == 60
    assert coco.getCatIds() == [c["id"] for c in COCO_CATEGORIES]
    assert len(coco.getAnnIds()) == len(raw["annotations"]) > 150
    for image_id in coco.getImgIds()[:10]:
        info = coco.loadImgs(image_id)[0]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert anns, "every image has at least one object"
        for ann in anns:
            mask = coco.annToMask(ann)
            assert mask.shape == (info["height"], info["width"]) and mask.dtype == np.uint8
            assert mask.any()


def test_categories_have_supercategories_and_coco_like_ids(raw):
    cats = raw["categories"]
    assert all(set(c) == {"id", "name", "supercategory"} for c in cats)
    assert len(cats) == 8 and len({c["supercategory"] for c in cats}) == 3
    ids = [c["id"] for c in cats]
    assert ids != list(range(1, len(ids) + 1)), "ids have gaps, like COCO's"


def test_images_vary_in_size_and_match_their_files(labels_path, raw):
    sizes = {(im["height"], im["width"]) for im in raw["images"]}
    assert len(sizes) > 30
    assert all(96 <= h <= 320 and 96 <= w <= 320 for h, w in sizes)
    for im in raw["images"][:5]:
        with Image.open(labels_path.parent / "data" / im["file_name"]) as pil:
            assert pil.size == (im["width"], im["height"]) and pil.mode == "RGB"


def test_objects_are_polygons_and_crowds_are_uncompressed_rle(raw):
    images = {im["id"]: im for im in raw["images"]}
    crowds = [a for a in raw["annotations"] if a["iscrowd"] == 1]
    normal = [a for a in raw["annotations"] if a["iscrowd"] == 0]
    assert len(crowds) + len(normal) == len(raw["annotations"])
    assert len(crowds) >= 5
    for a in normal:
        assert isinstance(a["segmentation"], list) and a["segmentation"]
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in a["segmentation"])
    names = _names(raw)
    rings = [a for a in normal if names[a["category_id"]] == "ring"]
    assert rings and all(len(a["segmentation"]) == 2 for a in rings), "a ring is two half-annuli"
    for a in crowds:
        seg = a["segmentation"]
        im = images[a["image_id"]]
        assert set(seg) == {"counts", "size"} and isinstance(seg["counts"], list)
        assert seg["size"] == [im["height"], im["width"]]
        assert sum(seg["counts"]) == im["height"] * im["width"]


def test_rle_round_trip_equals_the_polygon_masks(coco):
    for ann in coco.loadAnns(coco.getAnnIds()):
        info = coco.imgs[ann["image_id"]]
        h, w = info["height"], info["width"]
        mask = coco.annToMask(ann)
        if ann["iscrowd"]:
            expected = mask_utils.decode(mask_utils.frPyObjects(ann["segmentation"], h, w))
        else:
            expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w)))
        np.testing.assert_array_equal(mask, expected)
        rle = mask_utils.encode(np.asfortranarray(mask))
        np.testing.assert_array_equal(mask_utils.decode(rle), mask)


def test_area_and_bbox_come_from_the_mask(coco):
    for ann in coco.loadAnns(coco.getAnnIds()):
        rle = coco.annToRLE(ann)
        mask = coco.annToMask(ann)
        assert ann["area"] == int(mask_utils.area(rle)) == int(mask.sum())
        np.testing.assert_array_equal(ann["bbox"], mask_utils.toBbox(rle))
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_objects_do_not_overlap(coco):
    for image_id in coco.getImgIds():
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]
        assert np.sum(masks, axis=0).max() <= 1


def test_small_medium_and_large_objects_occur(raw):
    areas = np.array([a["area"] for a in raw["annotations"] if not a["iscrowd"]])
    small, large = (areas < 32**2).sum(), (areas > 96**2).sum()
    medium = len(areas) - small - large
    assert small >= 30 and medium >= 30 and large >= 10, (small, medium, large)


def test_category_distribution_is_long_tailed(raw):
    names = _names(raw)
    counts = collections.Counter(names[a["category_id"]] for a in raw["annotations"] if not a["iscrowd"])
    assert set(counts) == set(names.values()), "every category occurs"
    ordered = counts.most_common()
    assert ordered[0][1] >= 5 * ordered[-1][1], ordered
    assert ordered[0][0] == "disk"


def test_some_categories_co_occur_more_than_chance(coco):
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    present = [
        {names[a["category_id"]] for a in coco.loadAnns(coco.getAnnIds(imgIds=[i], iscrowd=False))}
        for i in coco.getImgIds()
    ]
    n = len(present)

    def lift(a, b):
        pa = sum(a in s for s in present) / n
        pb = sum(b in s for s in present) / n
        pab = sum(a in s and b in s for s in present) / n
        return pab / (pa * pb)

    lifts = {(a, b): lift(a, b) for a, b in itertools.combinations(sorted(set(names.values())), 2)}
    assert lifts[("bar", "cross")] > 1.5, lifts  # a cross usually comes with a bar
    assert max(lifts.values()) > 1.5


# -- determinism and the committed copy ------------------------------------------------------------


def _pixels(split_dir: Path) -> dict:
    out = {}
    for p in sorted((split_dir / "data").iterdir()):
        with Image.open(p) as pil:
            out[p.name] = np.asarray(pil)
    return out


def test_same_seed_writes_identical_json_and_pixels(tmp_path):
    a = write_coco_instances(tmp_path / "a", n_images=6, seed=3)
    b = write_coco_instances(tmp_path / "b", n_images=6, seed=3)
    c = write_coco_instances(tmp_path / "c", n_images=6, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    pa, pb = _pixels(a.parent), _pixels(b.parent)
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def test_image_i_does_not_depend_on_n_images_and_stale_files_go(tmp_path):
    big = write_coco_instances(tmp_path / "big", n_images=5, seed=1)
    small = write_coco_instances(tmp_path / "big", n_images=2, seed=1)  # rewrite in place, smaller
    assert big == small
    assert sorted(p.name for p in (small.parent / "data").iterdir()) == ["000000000001.png", "000000000002.png"]
    fresh = json.loads(write_coco_instances(tmp_path / "other", n_images=5, seed=1).read_text())
    again = json.loads(small.read_text())
    assert again["images"] == fresh["images"][:2]
    assert again["annotations"] == [a for a in fresh["annotations"] if a["image_id"] <= 2]


def test_committed_copy_equals_a_fresh_write(tmp_path):
    committed = COMMITTED / "val" / "labels.json"
    assert committed.is_file(), "data/coco_synthetic is missing; see data/coco_synthetic/README.md"
    fresh = write_coco_instances(tmp_path, **COMMITTED_ARGS)
    assert committed.read_bytes() == fresh.read_bytes(), (
        "data/coco_synthetic is stale: regenerate it with "
        f"segedu.data.write_coco_instances('data/coco_synthetic', **{COMMITTED_ARGS})"
    )
    old, new = _pixels(committed.parent), _pixels(fresh.parent)
    assert old.keys() == new.keys()
    for name in old:
        np.testing.assert_array_equal(old[name], new[name], err_msg=name)
    total = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file())
    assert total < 1_000_000, f"data/coco_synthetic is {total} bytes; keep the browsable copy under 1 MB"
    assert (COMMITTED / "README.md").is_file()


# -- reading, with clear errors --------------------------------------------------------------------


def test_load_coco_matches_pycocotools(labels_path, coco):
    ours = load_coco(labels_path)
    assert ours.getImgIds() == coco.getImgIds() and ours.getAnnIds() == coco.getAnnIds()
    assert load_coco(labels_path.parent).getAnnIds() == coco.getAnnIds()  # a folder with labels.json


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_coco(tmp_path / "nowhere" / "labels.json")
    message = str(info.value)
    assert "annotation file" in message and "not found" in message
    assert "segedu.data.write_coco_instances(root)" in message and "USE_REAL_COCO=True" in message


def test_corrupt_json_gives_line_and_column(labels_path, tmp_path):
    broken = tmp_path / "labels.json"
    broken.write_bytes(labels_path.read_bytes()[:5000])  # a truncated download
    with pytest.raises(CocoFormatError, match=r"not valid JSON: .* at line 1, column \d+"):
        load_coco(broken)
    multi = tmp_path / "multi.json"
    multi.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    with pytest.raises(ValueError, match="line 3, column 19"):
        load_coco(multi)


def test_missing_key_is_named(tmp_path):
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(CocoFormatError, match="no 'annotations' key"):
        load_coco(path)
    path.write_text("[]")
    with pytest.raises(CocoFormatError, match="results file"):
        load_coco(path)


# -- semantic label maps -----------------------------------------------------------------------------


def test_semantic_label_map(coco, raw):
    cat_ids = coco.getCatIds()
    crowd_image = next(a["image_id"] for a in raw["annotations"] if a["iscrowd"])
    info = coco.imgs[crowd_image]
    labels = semantic_label_map(coco, crowd_image)
    assert labels.shape == (info["height"], info["width"]) and labels.dtype == np.int64
    assert set(np.unique(labels)) <= set(range(len(cat_ids) + 1)) | {255}
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[crowd_image])):
        m = coco.annToMask(ann).astype(bool)
        expected = 255 if ann["iscrowd"] else cat_ids.index(ann["category_id"]) + 1
        assert (labels[m] == expected).all()
    assert (labels == 0).sum() == info["height"] * info["width"] - sum(
        int(coco.annToMask(a).sum()) for a in coco.loadAnns(coco.getAnnIds(imgIds=[crowd_image]))
    )


def test_semantic_label_map_resize_and_category_subset(coco):
    image_id = coco.getImgIds()[0]
    full = semantic_label_map(coco, image_id)
    small = semantic_label_map(coco, image_id, size=(40, 56))
    assert small.shape == (40, 56) and small.dtype == np.int64
    assert set(np.unique(small)) <= set(np.unique(full))  # nearest neighbour: no new labels
    same = semantic_label_map(coco, image_id, size=full.shape)
    np.testing.assert_array_equal(same, full)
    present = sorted({a["category_id"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))})
    only = semantic_label_map(coco, image_id, category_ids=[present[0]])
    assert set(np.unique(only)) <= {0, 1, 255} and (only == 1).any()
    with pytest.raises(ValueError, match="not in this COCO file"):
        semantic_label_map(coco, 10_000)
    assert semantic_label_map(coco, image_id, size=24).shape == (24, 24)  # an int n means (n, n)
    with pytest.raises(ValueError, match=r"pass image.shape\[:2\]"):
        semantic_label_map(coco, image_id, size=(40, 56, 3))


# -- the real-COCO switch, and argument checks -------------------------------------------------------


def test_real_coco_is_refused_without_the_switch(monkeypatch):
    # If the refusal came after `import fiftyone.zoo`, this would raise ImportError instead.
    monkeypatch.setitem(sys.modules, "fiftyone.zoo", None)
    for switch in (False, None, "yes", 1):
        with pytest.raises(RealCocoSwitchError, match=r"use_real_coco=True") as info:
            load_real_coco_subset(max_samples=5, use_real_coco=switch)
        assert "USE_REAL_COCO" in str(info.value) and "write_coco_instances" in str(info.value)


def test_write_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_size must be at least min_size"):
        write_coco_instances(tmp_path, min_size=200, max_size=100)
    with pytest.raises(ValueError, match="split must be a folder name"):
        write_coco_instances(tmp_path, split="../val")
    with pytest.raises(TypeError, match="seed must be an int"):
        write_coco_instances(tmp_path, seed=1.5)
    with pytest.raises(ValueError, match="seed must be at least 0"):
        write_coco_instances(tmp_path, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        write_coco_instances(tmp_path, seed=None)


# -- the subpackage ------------------------------------------------------------------------------------


def test_one_subpackage_and_every_public_name_exists():
    import segedu.data
    import segedu.data.coco as coco_package

    modules = [coco_package] + [coco_package.synthetic, coco_package.reading, coco_package.stats,
                                coco_package.evaluation, coco_package.fiftyone_env]
    for module in modules:
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ names missing attributes: {missing}"
    for name in ("load_coco", "write_coco_instances", "semantic_label_map", "fiftyone_environment"):
        assert getattr(segedu.data, name) is getattr(coco_package, name)
    for old in ("segedu.coco_eval", "segedu.data.coco_stats"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


def test_readers_keep_pycocotools_quiet(labels_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pycocotools' numpy-2 DeprecationWarning would fail the test
        coco = load_coco(labels_path)
        for image_id in coco.getImgIds()[:5]:
            semantic_label_map(coco, image_id, size=(32, 32))
    assert capsys.readouterr().out == "", "pycocotools printed its progress"


def test_quiet_pycocotools_silences_only_pycocotools(labels_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_pycocotools():
            coco = COCO(str(labels_path))  # prints "loading annotations into memory..." and more
            coco.annToMask(coco.anns[1])  # decodes, which warns under numpy 2
            warnings.warn("someone else's warning", DeprecationWarning)
        with quiet_pycocotools(stdout=False):
            print("still printed")
    assert [str(w.message) for w in caught] == ["someone else's warning"]
    assert capsys.readouterr().out == "still printed\n"


# -- FiftyOne ------------------------------------------------------------------------------------------


def _mongods() -> dict:
    """``{pid: command line}`` of every running mongod (psutil comes with FiftyOne)."""
    import psutil

    found = {}
    for p in psutil.process_iter(["name", "cmdline"]):
        cmdline = p.info["cmdline"] or []
        if p.info["name"] in ("mongod", "mongod.exe") or (cmdline and Path(cmdline[0]).stem == "mongod"):
            found[p.pid] = " ".join(cmdline)
    return found


@pytest.mark.fiftyone
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # FiftyOne's dependencies, not ours
@pytest.mark.skipif(importlib.util.find_spec("fiftyone") is None, reason="needs segedu[coco] (fiftyone)")
def test_fiftyone_loads_the_dataset_and_leaves_no_mongod(labels_path, raw, tmp_path):
    before = _mongods()
    with fiftyone_environment(tmp_path) as env:
        if env.attached:
            pytest.skip("another process's FiftyOne database was running, so FiftyOne attached to it")
        assert env.mongod_pid is not None
        assert str(tmp_path) in _mongods().get(env.mongod_pid, ""), "mongod runs on the temporary folder"
        dataset = fiftyone_dataset(labels_path)  # the path write_coco_instances returns
        assert dataset.count() == len(raw["images"])
        names = _names(raw)
        expected = collections.Counter(names[a["category_id"]] for a in raw["annotations"])
        assert dataset.count_values("segmentations.detections.label") == dict(expected)
        crowds = sum(a["iscrowd"] for a in raw["annotations"])
        assert dataset.count_values("segmentations.detections.iscrowd") == {
            0: len(raw["annotations"]) - crowds,
            1: crowds,
        }
    after = _mongods()
    assert env.mongod_pid not in after
    assert not [line for line in after.values() if str(tmp_path) in line]
    assert set(after) <= set(before), f"mongod left running: {set(after) - set(before)}"


# -- FiftyOne internals: checked before anything starts ------------------------------------------------

def _needs_fiftyone(test):
    """FiftyOne tests run in make test's fiftyone stage (one process), and only where it is installed."""
    skip = pytest.mark.skipif(importlib.util.find_spec("fiftyone") is None, reason="needs segedu[coco] (fiftyone)")
    return pytest.mark.fiftyone(skip(test))


@_needs_fiftyone
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # FiftyOne's dependencies, not ours
def test_every_internal_exists_in_the_installed_fiftyone():
    fiftyone_env.check_fiftyone_internals()  # raises if the installed FiftyOne lacks one


def test_no_fiftyone_says_which_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "fiftyone", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"segedu\[coco\]"):
        with fiftyone_environment(tmp_path):
            pass  # pragma: no cover


def _enter_with_timeout(tmp_path, seconds=30):
    """Enter fiftyone_environment in a thread; fail if it neither returns nor raises in time."""
    outcome = {}

    def enter():
        try:
            with fiftyone_environment(tmp_path) as env:
                outcome["env"] = env
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"fiftyone_environment hung for {seconds} s instead of raising"
    return outcome


@_needs_fiftyone
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # FiftyOne's dependencies, not ours
@pytest.mark.parametrize(
    "module, attribute",
    [
        ("fiftyone.core.odm.database", "_db_service"),
        ("fiftyone.core.odm.database", "_client"),
        ("fiftyone.core.odm.database", "_connection_kwargs"),
        ("fiftyone.core.odm.database", "_disconnect"),
        ("fiftyone.core.service", "MultiClientService.attached"),  # DatabaseService.attached
        ("fiftyone.service.util", "send_ipc_message"),
    ],
)
def test_a_missing_fiftyone_internal_fails_fast_and_clearly(monkeypatch, tmp_path, module, attribute):
    monkeypatch.setenv("FIFTYONE_DO_NOT_TRACK", "true")
    owner = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    monkeypatch.delattr(owner, name)
    environ = dict(os.environ)
    before = _mongods()

    outcome = _enter_with_timeout(tmp_path)

    assert "env" not in outcome, "fiftyone_environment ran without a FiftyOne internal it needs"
    error = outcome["error"]
    assert isinstance(error, RuntimeError), repr(error)
    message = str(error)
    internal = f"{module}.{attribute}".replace("MultiClientService", "DatabaseService")
    assert internal in message, message
    assert f"FiftyOne {fiftyone_env._fiftyone_version()}" in message
    assert 'pip install "fiftyone>=1.0,<1.23"' in message and fiftyone_env.TESTED_FIFTYONE in message
    # Nothing was started or changed.
    assert not (tmp_path / "fiftyone-db").exists()
    assert dict(os.environ) == environ
    assert set(_mongods()) <= set(before)
