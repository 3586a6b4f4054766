"""What to launch: the machines, the container's ``tfod-seg train`` arguments, checked up front.

`plan_launch(LaunchRequest)` turns "this config, this gs:// model_dir, on 4 T4 GPUs / 2 workers x
2 GPUs / a TPU v3-8" into a `LaunchPlan`: the Vertex AI worker pools (machine type, accelerator
type and count, replica count), the strategy and the exact ``tfod-seg train`` arguments every
replica runs, the container image and where the container reads the config. Before anything is
written the plan is run through the same preflight rules as a local job
(`tfod_seg.engines.preflight`): every path the config names must be ``gs://`` (the machines see
only Cloud Storage) and the global batch must divide by the replicas the job will have.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Optional, Tuple

from tfod_seg import __version__, io
from tfod_seg.engines import preflight as pf
from tfod_seg.engines import resolve_engine
from tfod_seg.errors import UserError

DEFAULT_REGION = "us-central1"
DEFAULT_GPU = "NVIDIA_TESLA_T4"
CPU_MACHINE = "n1-standard-8"

# Vertex AI machine type for each GPU model and count per machine (Vertex AI "configure compute").
GPU_MACHINES: Dict[str, Dict[int, str]] = {
    "NVIDIA_TESLA_T4": {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"},
    "NVIDIA_TESLA_V100": {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32", 8: "n1-standard-64"},
    "NVIDIA_TESLA_A100": {1: "a2-highgpu-1g", 2: "a2-highgpu-2g", 4: "a2-highgpu-4g", 8: "a2-highgpu-8g"},
    "NVIDIA_L4": {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"},
}
# Cloud TPU slices Vertex AI runs as the "cloud-tpu" machine type: (accelerator type, cores).
TPUS: Dict[str, Tuple[str, int]] = {"v2-8": ("TPU_V2", 8), "v3-8": ("TPU_V3", 8)}


class LaunchError(UserError):
    """A launch request that cannot work (bad machine, local data, batch vs replicas)."""


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    """What the user asked for. ``gpus`` is per machine (0: CPU); ``workers`` is the number of
    machines (> 1: a chief plus ``workers - 1`` workers, MultiWorkerMirroredStrategy); ``tpu``
    a slice name (``v3-8``) instead of GPUs."""

    config_path: str
    model_dir: str
    gpus: int = 0
    gpu_type: str = DEFAULT_GPU
    workers: int = 1
    tpu: Optional[str] = None
    machine_type: Optional[str] = None
    image: Optional[str] = None
    project: Optional[str] = None
    region: str = DEFAULT_REGION
    display_name: Optional[str] = None
    service_account: Optional[str] = None
    num_train_steps: Optional[int] = None
    checkpoint_every_n: Optional[int] = None
    mixed_precision: bool = False
    engine: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class WorkerPool:
    """One Vertex AI worker pool: ``replica_count`` machines of one kind."""

    role: str  # chief | worker
    machine_type: str
    replica_count: int
    accelerator_type: Optional[str] = None
    accelerator_count: int = 0


@dataclasses.dataclass
class LaunchPlan:
    """Everything the generated files say. ``job_config`` is the config path the container
    reads (``gs://``): the user's own when already remote, else ``MODEL_DIR/launch/NAME``,
    uploaded by ``--submit`` (or by the ``gcloud storage cp`` line of commands.sh)."""

    request: LaunchRequest
    engine: str
    kind: str  # cpu | gpu | tpu (the image variant)
    strategy: str
    pools: List[WorkerPool]
    job_config: str
    upload_config: bool
    train_args: List[str]
    image: str
    display_name: str
    replicas: int
    notes: List[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _machines(req: LaunchRequest) -> Tuple[str, List[WorkerPool]]:
    """``(kind, pools)`` for the request; `LaunchError` for an impossible combination."""
    if req.tpu:
        if req.tpu not in TPUS:
            raise LaunchError(f"--tpu {req.tpu!r}: expected one of {', '.join(TPUS)} (Vertex AI 'cloud-tpu' slices)")
        if req.gpus or req.workers != 1:
            raise LaunchError("--tpu runs on one TPU slice: leave out --gpus and --workers")
        acc, cores = TPUS[req.tpu]
        return "tpu", [WorkerPool("chief", "cloud-tpu", 1, acc, cores)]
    if req.workers < 1 or req.gpus < 0:
        raise LaunchError(f"--workers {req.workers} / --gpus {req.gpus}: expected workers >= 1 and gpus >= 0")
    acc, machine = None, req.machine_type or CPU_MACHINE
    if req.gpus:
        counts = GPU_MACHINES.get(req.gpu_type)
        if counts is None:
            raise LaunchError(f"--gpu_type {req.gpu_type!r}: expected one of {', '.join(GPU_MACHINES)}")
        if req.gpus not in counts:
            raise LaunchError(f"--gpus {req.gpus}: a {req.gpu_type} machine has {', '.join(map(str, counts))} GPUs")
        acc, machine = req.gpu_type, req.machine_type or counts[req.gpus]
    pools = [WorkerPool("chief", machine, 1, acc, req.gpus)]
    if req.workers > 1:
        pools.append(WorkerPool("worker", machine, req.workers - 1, acc, req.gpus))
    return ("gpu" if req.gpus else "cpu"), pools


def _strategy(kind: str, req: LaunchRequest) -> str:
    if kind == "tpu":
        return "tpu"
    if req.workers > 1:
        return "multi_worker"
    return "mirrored" if req.gpus > 1 else "gpu" if req.gpus == 1 else "cpu"


def _train_args(engine: str, strategy: str, job_config: str, req: LaunchRequest) -> List[str]:
    args = ["train", "--pipeline_config_path", job_config, "--model_dir", req.model_dir]
    if engine == "garden":
        args += ["--strategy", strategy]
    elif strategy == "tpu":
        args += ["--use_tpu"]
    if strategy == "tpu":
        args += ["--tpu_name", "local"]  # the TPU attached to this VM
    if strategy == "multi_worker":
        args += ["--num_workers", str(req.workers)]
    if req.num_train_steps is not None:
        args += ["--num_train_steps", str(req.num_train_steps)]
    if req.checkpoint_every_n is not None:
        args += ["--checkpoint_every_n", str(req.checkpoint_every_n)]
    if req.mixed_precision:
        args += ["--mixed_precision"]
    return args


def default_image(kind: str, project: Optional[str], region: str) -> str:
    """Artifact Registry URI for the image the generated Dockerfile builds (one tag per variant)."""
    suffix = "" if kind == "cpu" else f"-{kind}"
    return f"{region}-docker.pkg.dev/{project or 'PROJECT'}/tfod-seg/tfod-seg:{__version__}{suffix}"


def _check_job(req: LaunchRequest, engine: str, strategy: str, job_config: str, kind: str,
               pools: List[WorkerPool]) -> pf.PreflightReport:
    """The local preflight rules applied to the remote job: gs:// paths, batch vs replicas."""
    flags = {"--model_dir": req.model_dir, "--strategy": strategy, "--num_workers": req.workers,
             "--mixed_precision": req.mixed_precision, "--use_tpu": strategy == "tpu"}
    job = pf.build_job("train", engine, req.config_path, flags)
    paths = [pf.PathUse(job_config, "--pipeline_config_path") if u.source == "--pipeline_config_path" else u
             for u in job.paths]
    local = pf.local_paths(paths)
    if local:
        listed = "; ".join(f"{u.source} {u.path}" for u in local)
        raise LaunchError(f"{req.config_path}: the job runs on Google Cloud machines, which see only Cloud Storage, "
                          f"but {len(local)} path(s) are not gs://: {listed} (copy them with `gcloud storage cp -r` and "
                          f"point the config at gs://BUCKET/...)")
    tf_config = None
    if req.workers > 1:
        hosts = {"chief": ["chief:2222"], "worker": [f"worker{i}:2222" for i in range(req.workers - 1)]}
        tf_config = json.dumps({"cluster": hosts, "task": {"type": "chief", "index": 0}})
    job = dataclasses.replace(job, paths=tuple(paths), tf_config=tf_config,
                              tpu_cores=pools[0].accelerator_count if kind == "tpu" else pf.DEFAULT_TPU_CORES)
    try:
        return pf.check_job(job, pf.Devices(gpus=pools[0].accelerator_count if kind == "gpu" else 0))
    except pf.PreflightError as e:
        raise LaunchError(str(e).replace("preflight (", "launch preflight (", 1)) from None


def plan_launch(req: LaunchRequest) -> LaunchPlan:
    """Check ``req`` and work out the job (see module docstring); no network, nothing written."""
    if io.scheme(req.model_dir) != "gs":
        raise LaunchError(f"--model_dir {req.model_dir}: a cloud job writes its checkpoints to Cloud Storage; "
                          f"expected gs://BUCKET/PATH")
    io.check_path(req.model_dir, "--model_dir")
    io.check_path(req.config_path, "--pipeline_config_path")
    engine = resolve_engine(req.config_path, req.engine)
    kind, pools = _machines(req)
    if engine == "tfod" and kind == "tpu":
        raise LaunchError("--tpu with a TFOD2 pipeline.config: the TFOD2 environment pins TF 2.15 without TPU "
                          "support in the image; use a Model Garden .yaml (tfod-seg config --template garden_...)")
    strategy = _strategy(kind, req)
    remote = io.scheme(req.config_path) == "gs"
    job_config = req.config_path if remote else io.join(req.model_dir, "launch", io.basename(req.config_path))
    report = _check_job(req, engine, strategy, job_config, kind, pools)
    image = req.image or default_image(kind, req.project, req.region)
    name = req.display_name or f"tfod-seg-{io.basename(req.model_dir.rstrip('/'))}"
    notes = [f"{len(pools)} worker pool(s), {report.replicas} replica(s), strategy {strategy}"] + report.warnings
    return LaunchPlan(req, engine, kind, strategy, pools, job_config, not remote,
                      _train_args(engine, strategy, job_config, req), image, name, report.replicas, notes)
