"""Check and normalise COCO ground truth and COCO results before pycocotools sees them.

pycocotools has conventions that silently change a result: an annotation ``id`` of 0 means
"unmatched" inside `COCOeval` (ground truth with ids from 0, as labelme2coco writes, scored
exact predictions at AP 0.949 instead of 1.0), ``loadRes`` needs RLE segmentations, and a
string ``image_id`` that looks like a number matches nothing. So before scoring:

* images are renumbered ``1..N`` (in file order) and annotations ``1..M``; each prediction's
  ``image_id`` is mapped through the same table, which only accepts the ground truth's own
  ids with their own JSON type (``"1"`` is not ``1``);
* every field pycocotools reads is type-checked (ids, finite numbers, boxes of four
  numbers, RLE or polygon masks of the image's size), and a mistake raises `UserError` naming
  the file, the entry, the field, the bad value and what was expected;
* missing ``area`` / ``bbox`` are derived from the mask (or the box), polygon predictions
  become RLE.

Category ids are kept (they name the classes in every output). Coordinates are COCO's:
``bbox`` ``[x, y, w, h]`` absolute pixels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List

from tfod_seg.errors import UserError


@dataclasses.dataclass
class CocoInputs:
    """Ground truth and results ready for pycocotools (ids renumbered as described above)."""

    gt_doc: Dict  # images 1..N, annotations 1..M, original categories
    results: List[Dict]  # image ids mapped, RLE segmentations, bbox present


def _describe(value) -> str:
    text = repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} ({type(value).__name__})"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Checker:
    """Error messages naming the file, the entry and the field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, field: str, value, expected: str):
        raise UserError(f"{self.path}: {where} '{field}' is {_describe(value)}; expected {expected}")

    def entries(self, doc, key: str, what: str) -> list:
        value = doc.get(key)
        if not isinstance(value, list):
            raise UserError(f"{self.path}: '{key}' is {_describe(value)}; expected a JSON list of {what} objects")
        for i, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise UserError(f"{self.path}: {key}[{i}] is {_describe(entry)}; expected a JSON object ({what})")
        return value

    def box(self, where: str, value) -> List[float]:
        if not (isinstance(value, list) and len(value) == 4 and all(_is_number(v) for v in value)) or value[2] < 0 \
                or value[3] < 0:
            self.fail(where, "bbox", value, "[x, y, w, h]: four finite numbers, w and h >= 0")
        return [float(v) for v in value]

    def mask(self, where: str, seg, height: int, width: int):
        """An RLE (compressed, str counts) for a polygon list or an RLE of the right size."""
        from pycocotools import mask as mask_utils

        if isinstance(seg, list):
            if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                  and all(_is_number(v) for v in p) for p in seg):
                self.fail(where, "segmentation", seg, "a list of polygons [x1, y1, x2, y2, ...] (>= 3 points, "
                          "finite numbers) or an RLE {'size', 'counts'}")
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg, dict):
            size, counts = seg.get("size"), seg.get("counts")
            if size != [height, width]:
                self.fail(where, "segmentation.size", size, f"[{height}, {width}] (the image's [height, width])")
            if isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts) and sum(counts) == height * width:
                rle = mask_utils.frPyObjects(seg, height, width)
            elif isinstance(counts, str) and counts.isascii():
                try:
                    runs = rle_counts(counts)
                except ValueError:
                    runs = [-1]
                if min(runs, default=0) < 0 or sum(runs) != height * width:
                    self.fail(where, "segmentation.counts", counts, f"a COCO RLE string of {height}x{width} pixels")
                rle = {"size": size, "counts": counts.encode("ascii")}
            else:
                self.fail(where, "segmentation.counts", counts, "a COCO RLE string or a list of run lengths "
                          f"summing to {height}x{width}")
        else:
            self.fail(where, "segmentation", seg, "polygons or an RLE {'size', 'counts'}")
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def rle_counts(counts: str) -> List[int]:
    """The run lengths of a compressed COCO RLE string, parsed in Python (pycocotools'
    ``rleFrString`` format: 6-bit groups offset by 48, counts after the second stored as
    differences). ValueError for characters or a last group that cannot occur; pycocotools
    itself decodes any string into some mask, or writes past its buffer."""
    data = counts.encode("ascii")
    out: List[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("string ends inside a number")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {chr(data[p])!r} at {p}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def _images(check: _Checker, doc, first: int = 0) -> Dict:
    """Original id -> (new id, height, width); the renumbered image entries (``first``: how
    many images came before, in earlier chunks)."""
    table, images = {}, []
    for i, im in enumerate(check.entries(doc, "images", "image"), start=first):
        image_id = im.get("id")
        if not (_is_int(image_id) or isinstance(image_id, str)):
            check.fail(f"images[{i}]", "id", image_id, "an integer (or string) image id")
        if image_id in table:
            check.fail(f"images[{i}]", "id", image_id, "an id no other image has")
        for key in ("height", "width"):
            if not (_is_int(im.get(key)) and im[key] > 0):
                check.fail(f"images[{i}] (id {image_id!r})", key, im.get(key), "a positive integer (pixels)")
        table[image_id] = (i + 1, im["height"], im["width"])
        images.append(dict(im, id=i + 1))
    return {"table": table, "images": images}


def _categories(check: _Checker, doc) -> Dict[int, str]:
    names: Dict[int, str] = {}
    for i, cat in enumerate(check.entries(doc, "categories", "category")):
        if not _is_int(cat.get("id")) or cat["id"] in names:
            check.fail(f"categories[{i}]", "id", cat.get("id"), "an integer id no other category has")
        if not isinstance(cat.get("name"), str):
            check.fail(f"categories[{i}]", "name", cat.get("name"), "a string")
        names[cat["id"]] = cat["name"]
    if not names:
        raise UserError(f"{check.path}: 'categories' is empty; expected at least one {{'id', 'name'}}")
    return names


def _annotation(check: _Checker, i: int, ann: Dict, table: Dict, names: Dict) -> Dict:
    from pycocotools import mask as mask_utils

    where = f"annotations[{i}]"
    image_id = ann.get("image_id")
    if not (_is_int(image_id) or isinstance(image_id, str)) or image_id not in table:
        check.fail(where, "image_id", image_id, "the id of an entry of 'images' (same JSON type)")
    if not _is_int(ann.get("category_id")) or ann["category_id"] not in names:
        check.fail(where, "category_id", ann.get("category_id"), f"one of the category ids {sorted(names)[:20]}")
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, float):
        check.fail(where, "iscrowd", crowd, "0 or 1")
    new_image, h, w = table[ann["image_id"]]
    out = {"id": i + 1, "image_id": new_image, "category_id": ann["category_id"], "iscrowd": int(crowd)}
    if "segmentation" in ann:
        out["segmentation"] = check.mask(where, ann["segmentation"], h, w)
    if "bbox" in ann:
        out["bbox"] = check.box(where, ann["bbox"])
    elif "segmentation" in out:
        out["bbox"] = [float(v) for v in mask_utils.toBbox(dict(out["segmentation"], counts=out["segmentation"]["counts"].encode()))]
    else:
        raise UserError(f"{check.path}: {where} has neither 'bbox' nor 'segmentation'")
    area = ann.get("area")
    if area is not None and not (_is_number(area) and area >= 0):
        check.fail(where, "area", area, "a finite number >= 0")
    if area is None:
        seg = out.get("segmentation")
        area = float(mask_utils.area(dict(seg, counts=seg["counts"].encode()))) if seg else out["bbox"][2] * out["bbox"][3]
    out["area"] = float(area)
    return out


def check_ground_truth(doc, path: str = "ground truth", *, first_image: int = 0, first_annotation: int = 0) -> tuple:
    """Validated, renumbered ground truth: ``(gt_doc, image table)`` where the table maps each
    original image id to ``(new id, height, width)``.

    A dataset checked in chunks passes the number of images and annotations of the earlier
    chunks as ``first_image`` / ``first_annotation``: ids and positions in messages continue
    from there, as if the whole dataset were checked at once (an image id repeated in
    another chunk is not detected)."""
    check = _Checker(path)
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a COCO dataset object with 'images', 'annotations', 'categories', "
                        f"got {type(doc).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in doc]
    if missing:
        raise UserError(f"{path}: COCO ground truth lacks {missing}; expected 'images', 'annotations', 'categories'")
    names = _categories(check, doc)
    images = _images(check, doc, first_image)
    anns = [_annotation(check, i, a, images["table"], names)
            for i, a in enumerate(check.entries(doc, "annotations", "annotation"), start=first_annotation)]
    gt_doc = {k: v for k, v in doc.items() if k not in ("images", "annotations")}
    gt_doc.update(images=images["images"], annotations=anns)
    return gt_doc, images["table"]


def _result(check: _Checker, i: int, r, table: Dict) -> Dict:
    from pycocotools import mask as mask_utils

    where = f"result #{i}"
    if not isinstance(r, dict):
        raise UserError(f"{check.path}: {where} is {_describe(r)}; expected a JSON object "
                        "{'image_id', 'category_id', 'bbox', 'score', 'segmentation'}")
    for key in ("image_id", "category_id", "score"):
        if key not in r:
            raise UserError(f"{check.path}: {where} has no '{key}'")
    if "bbox" not in r and "segmentation" not in r:
        raise UserError(f"{check.path}: {where} has neither 'bbox' nor 'segmentation'")
    image_id = r["image_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)) or image_id not in table:
        ids = list(table)
        raise UserError(f"{check.path}: {where} has image_id {_describe(image_id)}, which is not in the ground truth "
                        f"({len(ids)} images, ids {ids[0] if ids else None!r}..{ids[-1] if ids else None!r}); "
                        "expected one of the ground truth's image ids, with its JSON type")
    if not _is_int(r["category_id"]):
        check.fail(where, "category_id", r["category_id"], "an integer category id")
    if not _is_number(r["score"]):
        check.fail(where, "score", r["score"], "a finite number")
    new_image, h, w = table[image_id]
    out = {k: v for k, v in r.items() if k not in ("area", "id")}  # pycocotools recomputes both
    out.update(image_id=new_image, score=float(r["score"]))
    if "segmentation" in r:
        out["segmentation"] = check.mask(where, r["segmentation"], h, w)
    if "bbox" in r:
        out["bbox"] = check.box(where, r["bbox"])
    else:
        out["bbox"] = [float(v) for v in mask_utils.toBbox(dict(out["segmentation"], counts=out["segmentation"]["counts"].encode()))]
    return out


def check_results(results, table: Dict, path: str = "predictions", *, first_result: int = 0) -> List[Dict]:
    """Validated COCO results with image ids mapped through ``table`` (`check_ground_truth`);
    ``first_result``: how many results came before (in earlier chunks), for the messages."""
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]  # a COCO-format file holding predictions
    if not isinstance(results, list):
        raise UserError(f"{path}: expected a JSON list of COCO results "
                        f"({{'image_id', 'category_id', 'bbox', 'score', 'segmentation'}}), got {type(results).__name__}")
    check = _Checker(path)
    return [_result(check, i, r, table) for i, r in enumerate(results, start=first_result)]


def check_inputs(gt_doc, results, gt_path: str = "ground truth", results_path: str = "predictions") -> CocoInputs:
    """Both checks; the pair pycocotools can score without surprises."""
    gt, table = check_ground_truth(gt_doc, gt_path)
    return CocoInputs(gt_doc=gt, results=check_results(results, table, results_path))


__all__ = ["CocoInputs", "check_ground_truth", "check_results", "check_inputs"]
