"""The predictor's metric contract with the dashboard and the alert rules: each family's type
and labels (counters without their ``_total``)."""

from __future__ import annotations

CONTRACT = {
    "loopline_request_duration_seconds": ("histogram", {"endpoint", "model_version"}),
    "loopline_requests": ("counter", {"endpoint", "model_version", "code"}),
    "loopline_feature_lookup_duration_seconds": ("histogram", set()),
    "loopline_model_inference_duration_seconds": ("histogram", set()),
    "loopline_batch_size": ("histogram", set()),
    "loopline_feature_status": ("counter", {"feature_view", "status"}),
    "loopline_prediction_score": ("histogram", {"model_version"}),
    "loopline_prediction_log_queue_depth": ("gauge", set()),
    "loopline_prediction_log_failures": ("counter", {"sink"}),
    "loopline_prediction_log_records": ("counter", {"sink"}),
    "loopline_model_info": ("gauge", {"model", "model_version", "artifact_sha256"}),
}
