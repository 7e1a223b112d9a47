"""Start a retraining: a Job from the model's suspended retrain CronJob, as
``kubectl create job --from=cronjob/<name>`` makes one.

The Job copies the CronJob's ``jobTemplate`` (its labels, annotations and spec), carries the
``cronjob.kubernetes.io/instantiate: manual`` annotation and the reason, and is owned by the
CronJob (garbage-collected with it; its history limits do not count it). The owner reference
is a controller reference without ``blockOwnerDeletion``: setting that needs ``update`` on
``cronjobs/finalizers`` under the OwnerReferencesPermissionEnforcement admission plugin, a
grant the monitor does not otherwise need. ``generateName`` gives every Job a unique name.
"""

from __future__ import annotations

from kubernetes.client import (
    ApiClient,
    BatchV1Api,
    V1CronJob,
    V1Job,
    V1ObjectMeta,
    V1OwnerReference,
)

from loopline.cluster.api import ClusterError, calling, in_cluster_client, namespace, required
from loopline.settings import Settings

REASON_ANNOTATION = "loopline.io/retrain-reason"
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
REASON_CHARS = 1024
"""Most characters of the reason kept in the annotation (the monitor's summary stays readable
in ``kubectl describe``; the full decision is in the decision log)."""
PREFIX_CHARS = 52
"""Longest ``generateName`` prefix: the API server appends 5 characters, and the Job's name is
also a label value of its pods (at most 63), as with the Jobs the CronJob controller names."""


def job_from_cronjob(cronjob: V1CronJob, reason: str) -> V1Job:
    """The Job ``kubectl create job --from=cronjob/...`` makes, plus the reason annotation."""
    if cronjob.metadata is None or cronjob.spec is None:
        raise ClusterError("the API server answered a CronJob without metadata or spec")
    meta, template = cronjob.metadata, cronjob.spec.job_template
    name = meta.name or ""
    annotations = dict((template.metadata.annotations if template.metadata else None) or {})
    annotations[INSTANTIATE_ANNOTATION] = "manual"
    annotations[REASON_ANNOTATION] = reason[:REASON_CHARS]
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            generate_name=f"{name[:PREFIX_CHARS].rstrip('-')}-",
            namespace=meta.namespace,
            labels=dict((template.metadata.labels if template.metadata else None) or {}) or None,
            annotations=annotations,
            owner_references=[
                V1OwnerReference(
                    api_version="batch/v1",
                    kind="CronJob",
                    name=name,
                    uid=meta.uid or "",
                    controller=True,
                )
            ],
        ),
        spec=template.spec,
    )


def trigger_retrain(settings: Settings, reason: str, *, client: ApiClient | None = None) -> str:
    """Create a Job from ``kubernetes_retrain_cronjob``; return the Job's name.

    ``reason`` is what triggered it (the monitor's decision), kept as an annotation. Errors are
    ClusterErrors naming the CronJob or the Job and the API server's status.
    """
    cronjob_name = required(
        settings.kubernetes_retrain_cronjob, "KUBERNETES_RETRAIN_CRONJOB", "retrain CronJob"
    )
    ns = namespace(settings)
    timeout = settings.kubernetes_timeout_s
    batch = BatchV1Api(client or in_cluster_client(settings))
    with calling("reading", f"CronJob {ns}/{cronjob_name}"):
        cronjob = batch.read_namespaced_cron_job(cronjob_name, ns, _request_timeout=timeout)
    job = job_from_cronjob(cronjob, reason)
    with calling("creating a Job from", f"CronJob {ns}/{cronjob_name}"):
        # The client (37.0.1) sends no Content-Type on a create; the API server would assume
        # JSON, but the body's type is stated rather than left to a default.
        created = batch.create_namespaced_job(
            ns, job, _headers={"Content-Type": "application/json"}, _request_timeout=timeout
        )
    if created.metadata is None or not created.metadata.name:
        raise ClusterError(f"the Job created from CronJob {ns}/{cronjob_name} came back unnamed")
    return created.metadata.name
