"""The Vertex AI CustomJob for a `LaunchPlan`: its JSON, its check, and submitting it.

`custom_job` gives the CustomJob resource in the JSON form of the REST API
(``projects.locations.customJobs.create``): ``displayName`` and ``jobSpec.workerPoolSpecs``, one
pool per `WorkerPool` (pool 0 is the chief; Vertex AI sets ``TF_CONFIG`` with ``chief`` and
``worker`` tasks on each replica, which ``--strategy multi_worker`` reads). `job_spec` is the
``jobSpec`` part alone, the file ``gcloud ai custom-jobs create --config`` takes.
`parse_custom_job` parses the JSON into the official ``google.cloud.aiplatform_v1.CustomJob``
type (unknown fields and bad enum names are errors) without any request. `submit` sends it with
the official client (``pip install -e .[cloud]``).
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from tfod_seg import io
from tfod_seg.errors import UserError
from tfod_seg.launch.spec import LaunchPlan, WorkerPool

logger = logging.getLogger(__name__)


def _pool(plan: LaunchPlan, pool: WorkerPool) -> Dict[str, Any]:
    machine: Dict[str, Any] = {"machineType": pool.machine_type}
    if pool.accelerator_type:
        machine.update(acceleratorType=pool.accelerator_type, acceleratorCount=pool.accelerator_count)
    return {
        "machineSpec": machine,
        "replicaCount": str(pool.replica_count),  # int64 is a string in proto JSON
        "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100},
        "containerSpec": {"imageUri": plan.image, "command": ["tfod-seg"], "args": list(plan.train_args)},
    }


def job_spec(plan: LaunchPlan) -> Dict[str, Any]:
    """The CustomJobSpec: worker pools, output folder, optional service account."""
    spec: Dict[str, Any] = {
        "workerPoolSpecs": [_pool(plan, p) for p in plan.pools],
        "baseOutputDirectory": {"outputUriPrefix": io.join(plan.request.model_dir, "vertex")},
    }
    if plan.request.service_account:
        spec["serviceAccount"] = plan.request.service_account
    return spec


def custom_job(plan: LaunchPlan) -> Dict[str, Any]:
    """The CustomJob resource (REST JSON, camelCase)."""
    return {"displayName": plan.display_name, "labels": {"tool": "tfod-seg"}, "jobSpec": job_spec(plan)}


def parse_custom_job(data: Dict[str, Any]):
    """``data`` as a ``google.cloud.aiplatform_v1.CustomJob``; `UserError` naming the field when
    it is not one (unknown field, bad enum value). No request is made."""
    try:
        from google.cloud import aiplatform_v1
        from google.protobuf import json_format
    except ImportError as e:
        raise UserError(f"google-cloud-aiplatform is not installed ({e}); pip install -e '.[cloud]'") from None
    job = aiplatform_v1.CustomJob()
    try:
        json_format.ParseDict(data, aiplatform_v1.CustomJob.pb(job), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise UserError(f"not a Vertex AI CustomJob: {str(e).splitlines()[0]}") from None
    return job


def submit(plan: LaunchPlan, data: Dict[str, Any]) -> str:
    """Upload the config when needed and create the CustomJob; returns its resource name.

    Without credentials: one-line `UserError` (no metadata-server wait off Google Cloud)."""
    req = plan.request
    if not req.project:
        raise UserError("--submit needs --project (the Google Cloud project that runs the job)")
    if "/PROJECT/" in plan.image:
        raise UserError(f"--submit: the image {plan.image} has a placeholder; give --image or --project")
    io.prepare_gcs()  # google-auth reads NO_GCE_CHECK when it is imported
    job = parse_custom_job(data)
    try:
        import google.auth
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions
        from google.cloud import aiplatform_v1
    except ImportError as e:
        raise UserError(f"--submit needs google-cloud-aiplatform ({e}); pip install -e '.[cloud]'") from None
    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except auth_exceptions.DefaultCredentialsError:
        raise UserError(f"--submit: no Google Cloud credentials found ({io.CREDENTIALS_HINT})") from None
    if plan.upload_config:
        io.copy(req.config_path, plan.job_config, overwrite=True)
        logger.info("uploaded %s to %s", req.config_path, plan.job_config)
    client = aiplatform_v1.JobServiceClient(client_options={"api_endpoint": f"{req.region}-aiplatform.googleapis.com"})
    try:
        created = client.create_custom_job(parent=f"projects/{req.project}/locations/{req.region}", custom_job=job,
                                           timeout=120)
    except (api_exceptions.GoogleAPICallError, auth_exceptions.GoogleAuthError) as e:
        raise UserError(f"--submit: Vertex AI refused the job: {str(e).splitlines()[0]}") from None
    return created.name
