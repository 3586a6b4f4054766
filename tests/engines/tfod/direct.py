"""Run TFOD2's own entry points the way its documentation does, in the TFOD2 environment.

Each helper starts ``python -m object_detection....`` (or ``python -c CODE``) in a subprocess with
the TFOD2 interpreter and nothing from tfod-seg in between: the environment's start-up hook
(``tfod_seg_tfod2_compat.pth``, tools/setup_tfod_env.sh) is all that stands between TFOD2 and the
TF 2.15 stack. Reusable by other tests (e.g. training a generated pipeline.config a few steps):

    from tests.engines.tfod import direct
    direct.train(config, model_dir)            # model_main_tf2, TFOD2's minimum of 100 steps
    direct.evaluate(config, model_dir)         # model_main_tf2 --checkpoint_dir
    direct.export(config, model_dir, out)      # exporter_main_v2

TFOD2's training loop runs ``NUM_STEPS_PER_ITERATION`` (100) steps per call and has no flag for
it, so a direct run trains 100 steps at least; it saves a checkpoint at step 0 and then every
``--checkpoint_every_n`` steps (not at the end), so `train` passes ``--checkpoint_every_n`` equal
to the config's ``num_steps``. Evaluation with ``--checkpoint_dir`` returns once it has evaluated
a checkpoint at the config's ``num_steps``; otherwise it waits for newer ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
TFOD2_STEPS = 100  # model_lib_v2.NUM_STEPS_PER_ITERATION: the fewest steps a direct run trains


def tfod_python() -> str:
    """The TFOD2 interpreter: the one running these tests (`make test-tfod`), or the override."""
    return os.environ.get("TFOD_SEG_TFOD_PYTHON") or sys.executable


def main_python() -> str | None:
    """tfod-seg's own interpreter (TF 2.20 + Model Garden): `make test-tfod` passes it as
    ``$TFOD_SEG_MAIN_PYTHON``; else the checkout's ``.venv``; None when neither exists."""
    for path in (os.environ.get("TFOD_SEG_MAIN_PYTHON"), str(REPO / ".venv" / "bin" / "python")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run(args: list, *, python: str | None = None, cwd=None, timeout: float = 1800,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a subprocess; fails the test with the output's tail when it fails."""
    return _run([python or tfod_python(), *args], cwd=cwd, timeout=timeout, env=env)


def run_tool(name: str, args: list, **kwargs) -> subprocess.CompletedProcess:
    """A console script of the TFOD2 environment (e.g. ``tflite_convert``), run as a user does."""
    return _run([str(Path(tfod_python()).parent / name), *args], **kwargs)


def _run(cmd: list, *, cwd=None, timeout: float = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [os.fspath(a) for a in cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise AssertionError(f"exit status {proc.returncode}: {' '.join(cmd)}\n{tail}")
    return proc


def train(config, model_dir, *, steps: int = TFOD2_STEPS, **env) -> Path:
    """Train ``config`` (a TFOD2 pipeline.config) with model_main_tf2 into ``model_dir``.

    ``steps`` must be a multiple of 100 (TFOD2 trains 100 steps per loop call) and should equal
    the config's ``train_config.num_steps`` so that `evaluate` returns after one evaluation."""
    assert steps % TFOD2_STEPS == 0, "model_main_tf2 trains in blocks of 100 steps"
    run(["-m", "object_detection.model_main_tf2", f"--pipeline_config_path={config}",
         f"--model_dir={model_dir}", f"--num_train_steps={steps}", f"--checkpoint_every_n={steps}",
         "--alsologtostderr"], env=env)
    return Path(model_dir)


def evaluate(config, checkpoint_dir, model_dir=None) -> Path:
    """COCO evaluation of the latest checkpoint with ``model_main_tf2 --checkpoint_dir``; the
    metrics go to ``MODEL_DIR/eval/`` as TensorBoard events (default: beside the checkpoints)."""
    model_dir = model_dir or checkpoint_dir
    run(["-m", "object_detection.model_main_tf2", f"--pipeline_config_path={config}",
         f"--model_dir={model_dir}", f"--checkpoint_dir={checkpoint_dir}", "--eval_timeout=60",
         "--alsologtostderr"])
    return Path(model_dir)


def export(config, checkpoint_dir, out, input_type: str = "image_tensor") -> Path:
    """``exporter_main_v2``: OUT/saved_model, OUT/checkpoint, OUT/pipeline.config."""
    run(["-m", "object_detection.exporter_main_v2", f"--input_type={input_type}",
         f"--pipeline_config_path={config}", f"--trained_checkpoint_dir={checkpoint_dir}",
         f"--output_directory={out}"])
    return Path(out)


def event_scalars(directory) -> dict[str, float]:
    """The last value of every scalar summary in the TensorBoard event files under ``directory``."""
    import tensorflow as tf

    values = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(os.fspath(directory), "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    values[v.tag] = v.simple_value
                elif v.HasField("tensor"):  # TF2 summaries; images are tensors of strings
                    array = tf.make_ndarray(v.tensor)
                    if array.ndim == 0 and array.dtype.kind in "fiu":
                        values[v.tag] = float(array)
    return values


# ---- generated COCO data -------------------------------------------------------------------

CATEGORIES = [{"id": 1, "name": "square", "supercategory": "shape"},
              {"id": 2, "name": "disc", "supercategory": "shape"}]


def _shape(rng, size):
    w, h = (int(v) for v in rng.integers(size // 5, size // 2, 2))
    x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
    return x0, y0, w, h


def _disc_polygon(x0, y0, w, h, points=24):
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xs = x0 + w / 2 + (w / 2) * np.cos(t)
    ys = y0 + h / 2 + (h / 2) * np.sin(t)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def write_coco(root, num_images: int = 12, size: int = 128, seed: int = 0, val_every: int = 4) -> dict:
    """A COCO dataset of squares and discs (polygons) on flat backgrounds, as JPEGs.

    Returns paths: ``images`` (folder), ``all``/``train``/``val`` (instances JSON files; every
    ``val_every``-th image is val). Each image has a square and, on odd images, a disc."""
    import PIL.Image
    import PIL.ImageDraw

    root = Path(root)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(num_images):
        img = PIL.Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(20, 80, 3)))
        draw = PIL.ImageDraw.Draw(img)
        for category in ([1, 2] if i % 2 else [1]):
            x0, y0, w, h = _shape(rng, size)
            if category == 1:
                polygon = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            else:
                polygon = _disc_polygon(x0, y0, w, h)
            draw.polygon(polygon, fill=(220, 90, 60) if category == 1 else (70, 210, 120))
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                                "segmentation": [polygon], "bbox": [x0, y0, w, h],
                                "area": float(w * h if category == 1 else np.pi * w * h / 4), "iscrowd": 0})
        name = f"img{i:03d}.jpg"
        img.save(images_dir / name, quality=95)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})

    def dump(name, keep):
        ids = {im["id"] for im in images if keep(im["id"])}
        data = {"images": [im for im in images if im["id"] in ids],
                "annotations": [a for a in annotations if a["image_id"] in ids], "categories": CATEGORIES}
        (root / name).write_text(json.dumps(data))
        return root / name

    return {"images": images_dir, "all": dump("instances_all.json", lambda i: True),
            "train": dump("instances_train.json", lambda i: i % val_every),
            "val": dump("instances_val.json", lambda i: not i % val_every)}


# ---- an export from the other engine (Model Garden, in tfod-seg's own environment) ----------

_GARDEN_EXPORT = """
import os, sys
from tfod_seg.cli import main
from tfod_seg.demo.shapes import CLASSES, generate_shapes_dataset
from tests.garden_fixtures import write_tiny_config

root, steps = sys.argv[1], int(sys.argv[2])
j = lambda *parts: os.path.join(root, *parts)
generate_shapes_dataset(j("labelme"), num_images=8, image_size=64, seed=11)

def cli(*argv):
    code = main(list(argv))
    if code:
        sys.exit(f"tfod-seg {argv[0]} failed with status {code}")

cli("convert", "--format", "labelme", j("labelme"), "--out", j("records"), "--val-fraction", "0.25",
    "--workers", "1", "--quiet", "--strict")
config = write_tiny_config(j("garden.yaml"), j("records", "train-*.tfrecord"), j("records", "val-*.tfrecord"),
                           len(CLASSES), extra={
    "trainer.train_steps": steps, "trainer.steps_per_loop": steps, "trainer.summary_interval": steps,
    "trainer.checkpoint_interval": steps, "trainer.optimizer_config.warmup.linear.warmup_steps": 1,
    "task.model.detection_generator.pre_nms_score_threshold": 0.0})
cli("train", "--pipeline_config_path", config, "--model_dir", j("model"), "--strategy", "cpu")
cli("export", "--pipeline_config_path", config, "--trained_checkpoint_dir", j("model"),
    "--output_directory", j("export"))
"""


def garden_export(root, steps: int = 2) -> Path:
    """A tiny Model Garden Mask R-CNN (generated shapes, 64 px, ``steps`` steps, detection score
    threshold 0), trained and exported by tfod-seg in its own environment (``main_python()``).

    Returns the export folder: ``saved_model/``, ``label_map.pbtxt``, ``pipeline.yaml``."""
    root = Path(root)
    run(["-c", _GARDEN_EXPORT, root, str(steps)], python=main_python(), cwd=REPO,
        env={"PYTHONPATH": str(REPO)})
    return root / "export"


def run_json(code: str, *args, python: str | None = None, **kwargs):
    """Run ``python -c CODE ARGS``; the script's last stdout line is JSON, returned decoded."""
    proc = run(["-c", code, *[os.fspath(a) for a in args]], python=python, **kwargs)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output from the script; stderr tail:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])
