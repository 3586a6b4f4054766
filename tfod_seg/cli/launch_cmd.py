"""`tfod-seg launch`: a Vertex AI CustomJob, a Dockerfile and gcloud commands to train in the cloud."""

from __future__ import annotations

NAME = "launch"
HELP = "write (and optionally submit) a Vertex AI training job: CustomJob spec, Dockerfile, gcloud commands"
DESCRIPTION = """\
Write the files to train a config on Google Cloud machines, into --out:
  custom_job.json   Vertex AI CustomJob (worker pools: machine type, accelerators, replicas,
                    container image and the `tfod-seg train ...` arguments each replica runs)
  job_spec.yaml     its jobSpec, for `gcloud ai custom-jobs create --config`
  Dockerfile        an image with tfod-seg and the pinned stack (constraints.txt)
  commands.sh       build + push the image, upload the config, submit with gcloud
  tpu_vm.sh         the same training on a Cloud TPU VM with `gcloud compute tpus tpu-vm`
  launch.json       the plan as JSON

Cloud machines see only Cloud Storage: --model_dir and every path in the config (records,
label map, checkpoint) must be gs://; a local config is uploaded to MODEL_DIR/launch/. The
global batch must divide by the replicas (GPUs x machines, or the TPU's 8 cores). Both are
checked before anything is written. --submit sends the CustomJob with google-cloud-aiplatform
(pip install -e '.[cloud]'), with your gcloud application-default credentials."""
EPILOG = """examples:
  # 1 machine, 4 T4 GPUs (MirroredStrategy)
  tfod-seg launch --pipeline_config_path cfg.yaml --model_dir gs://bucket/runs/a --gpus 4 --out launch/a

  # 2 machines x 2 A100 (chief + 1 worker, MultiWorkerMirroredStrategy), submitted
  tfod-seg launch --pipeline_config_path gs://bucket/cfg.yaml --model_dir gs://bucket/runs/b \\
      --workers 2 --gpus 2 --gpu_type NVIDIA_TESLA_A100 --project my-project --submit

  # a TPU v3-8 (bfloat16 with --mixed_precision)
  tfod-seg launch --pipeline_config_path cfg.yaml --model_dir gs://bucket/runs/c --tpu v3-8 --mixed_precision
"""


def add_arguments(parser) -> None:
    parser.add_argument("--pipeline_config_path", required=True, metavar="CFG",
                        help="Model Garden experiment .yaml or TFOD2 pipeline.config (local or gs://)")
    parser.add_argument("--model_dir", required=True, metavar="GS_DIR", help="gs:// folder for checkpoints")
    parser.add_argument("--out", default="launch", metavar="DIR", help="where the files are written")
    machines = parser.add_argument_group("machines")
    machines.add_argument("--gpus", type=int, default=0, metavar="N", help="GPUs per machine (0: CPU only)")
    machines.add_argument("--gpu_type", default="NVIDIA_TESLA_T4",
                          help="Vertex AI accelerator type: NVIDIA_TESLA_T4, NVIDIA_TESLA_V100, "
                               "NVIDIA_TESLA_A100, NVIDIA_L4")
    machines.add_argument("--workers", type=int, default=1, metavar="N",
                          help="machines; > 1 is a chief plus N-1 workers (multi_worker)")
    machines.add_argument("--tpu", default=None, metavar="SLICE", help="a TPU slice instead of GPUs: v2-8 or v3-8")
    machines.add_argument("--machine_type", default=None, help="override the machine type chosen for the GPUs")
    job = parser.add_argument_group("job")
    job.add_argument("--image", default=None,
                     help="container image URI (default: REGION-docker.pkg.dev/PROJECT/tfod-seg/tfod-seg:VERSION[-gpu|-tpu])")
    job.add_argument("--project", default=None, help="Google Cloud project (needed by --submit)")
    job.add_argument("--region", default="us-central1", help="Vertex AI region")
    job.add_argument("--display_name", default=None, help="job name (default: tfod-seg-<model_dir name>)")
    job.add_argument("--service_account", default=None, help="service account the job runs as")
    job.add_argument("--num_train_steps", type=int, default=None, metavar="N", help="passed to `tfod-seg train`")
    job.add_argument("--checkpoint_every_n", type=int, default=None, metavar="K", help="passed to `tfod-seg train`")
    job.add_argument("--mixed_precision", action="store_true",
                     help="passed to `tfod-seg train` (float16 on GPU, bfloat16 on TPU)")
    job.add_argument("--engine", choices=("garden", "tfod"), default=None,
                     help="override the engine chosen from the config's extension")
    parser.add_argument("--submit", action="store_true", help="also create the job on Vertex AI")


def run(args) -> int:
    import sys

    from tfod_seg import io
    from tfod_seg.launch import LaunchRequest, custom_job, plan_launch, submit, write_launch_files

    io.check_path(args.out, "--out")  # a malformed --out fails before any work
    req = LaunchRequest(
        config_path=args.pipeline_config_path, model_dir=args.model_dir, gpus=args.gpus, gpu_type=args.gpu_type,
        workers=args.workers, tpu=args.tpu, machine_type=args.machine_type, image=args.image,
        project=args.project, region=args.region, display_name=args.display_name,
        service_account=args.service_account, num_train_steps=args.num_train_steps,
        checkpoint_every_n=args.checkpoint_every_n, mixed_precision=args.mixed_precision, engine=args.engine)
    plan = plan_launch(req)
    files = write_launch_files(plan, args.out)
    for note in plan.notes:
        print(f"launch: {note}", file=sys.stderr)
    for role, path in files.files.items():
        print(f"{role:<13} {path}")
    print(f"train args: tfod-seg {' '.join(plan.train_args)}")
    if args.submit:
        name = submit(plan, custom_job(plan))
        print(f"submitted: {name}")
        print(f"follow it: gcloud ai custom-jobs stream-logs {name.rsplit('/', 1)[-1]} --region={args.region}")
    return 0
