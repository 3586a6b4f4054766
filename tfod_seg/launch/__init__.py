"""Cloud jobs for `tfod-seg train`: Vertex AI CustomJob specs, a Dockerfile, Cloud TPU VM commands.

    plan = plan_launch(LaunchRequest("cfg.yaml", "gs://bucket/run", gpus=4))
    files = write_launch_files(plan, "launch/")        # custom_job.json, Dockerfile, commands.sh, ...
    name = submit(plan, custom_job(plan))               # optional: needs credentials + [cloud] extra

Layer: below the CLI, above `tfod_seg.engines` (it applies the engines' preflight rules to the
remote job).
"""

from tfod_seg.launch.files import LaunchFiles, dockerfile, write_launch_files
from tfod_seg.launch.spec import LaunchError, LaunchPlan, LaunchRequest, WorkerPool, plan_launch
from tfod_seg.launch.vertex import custom_job, job_spec, parse_custom_job, submit

__all__ = ["LaunchError", "LaunchFiles", "LaunchPlan", "LaunchRequest", "WorkerPool", "custom_job", "dockerfile",
           "job_spec", "parse_custom_job", "plan_launch", "submit", "write_launch_files"]
