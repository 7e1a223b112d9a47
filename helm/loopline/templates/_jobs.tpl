{{/*
What every Loopline job runs, shared by the CronJobs (cronjobs.yaml) and the first-run Job
(first-run-job.yaml). Each script runs verbs of the image's `loopline` command;
tests/k8s/test_job_commands.py checks every one against the CLI.
*/}}

{{/*
Where the jobs export a model for its InferenceService: the folder, in the jobs' mount of the
chart's PVC, that a pvc://<claim>/<path> storageUri names; the s3:// storageUri itself when
models are on S3 (the jobs have the credentials and the egress for it); empty otherwise (another
claim, another store), which no job can write. Call with (dict "root" $ "model" $model).
*/}}
{{- define "loopline.exportTarget" -}}
{{- $claim := printf "pvc://%s/" (include "loopline.dataClaim" .root) -}}
{{- $uri := include "loopline.storageUri" . -}}
{{- if hasPrefix $claim $uri -}}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.persistence.mountPath) (trimPrefix $claim $uri | trimSuffix "/") -}}
{{- else if and (hasPrefix "s3://" $uri) (eq .root.Values.modelStorage.type "s3") -}}
{{- trimSuffix "/" $uri -}}
{{- end -}}
{{- end -}}

{{/*
Prepare the packaged reference data when the repo has none, apply, materialize. With "last" the
script ends there, and its last command replaces the shell (signals reach loopline). Call with
(dict "root" $ "last" bool).
*/}}
{{- define "loopline.materializeScript" -}}
{{- if .root.Values.jobs.materialize.bootstrapReferenceData -}}
test -f "$LOOPLINE_FEATURE_REPO/data/manifest.json" || loopline data prepare
{{ end -}}
loopline features apply
{{ if .last }}exec {{ end }}loopline features materialize
{{- end -}}

{{/*
Train a model, then export its champion where its InferenceService loads it (when a job can
write there). With "first" (the first-run Job) a model that already has a champion, e.g. in a
PVC kept from an earlier release, is not trained again; without it the script ends there and its
last command replaces the shell. Call with (dict "root" $ "model" $model "first" bool).
*/}}
{{- define "loopline.trainScript" -}}
{{- $name := squote .model.name -}}
{{- $train := printf "loopline train --model %s" (squote .model.spec) -}}
{{- $target := include "loopline.exportTarget" . -}}
{{- $exec := ternary "" "exec " .first -}}
{{- if .first -}}
loopline models show {{ $name }} --version champion >/dev/null 2>&1 || {{ $train }}
{{- else -}}
{{ ternary "" $exec (not (empty $target)) }}{{ $train }}
{{- end }}
{{- with $target }}
{{ $exec }}loopline models export {{ $name }} {{ squote . }} --version champion --overwrite
{{- end }}
{{- end -}}

{{/*
A Job's spec: one pod as the "jobs" service account (no API token), the feature repo assembled
by the init container, the data PVC writable. Call with (dict "root" $ "component" name
"model" name-or-empty "activeDeadlineSeconds" n "resources" map "script" text).
*/}}
{{- define "loopline.jobSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
backoffLimit: {{ $v.jobs.backoffLimit }}
activeDeadlineSeconds: {{ .activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ $v.jobs.ttlSecondsAfterFinished }}
template:
  metadata:
    labels:
      {{- include "loopline.labels" (dict "root" $root "component" .component) | nindent 6 }}
      {{- with .model }}
      loopline.io/model: {{ . }}
      {{- end }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "loopline.serviceAccountName" (dict "root" $root "role" "jobs") }}
    automountServiceAccountToken: false
    securityContext:
      {{- include "loopline.podSecurityContext" $root | nindent 6 }}
    {{- with (include "loopline.imagePullSecrets" $root) }}{{ . | nindent 4 }}{{- end }}
    initContainers:
      {{- include "loopline.featureRepoInitContainer" (dict "root" $root "writable" true) | nindent 6 }}
    containers:
      - name: {{ .component }}
        image: {{ include "loopline.image" $root }}
        imagePullPolicy: {{ $v.image.pullPolicy }}
        command:
          - /bin/sh
          - -ec
        args:
          {{- toYaml (list .script) | nindent 10 }}
        env:
          - name: LOOPLINE_HOME
            value: {{ printf "%s/home" $v.persistence.mountPath }}
          - name: LOOPLINE_TORCH_THREADS
            value: {{ $v.jobs.torchThreads | quote }}
          {{- include "loopline.commonEnv" $root | nindent 10 }}
          {{- with (include "loopline.s3Env" $root | trim) }}{{ . | nindent 10 }}{{- end }}
        resources:
          {{- toYaml .resources | nindent 10 }}
        securityContext:
          {{- include "loopline.containerSecurityContext" $root | nindent 10 }}
        volumeMounts:
          {{- include "loopline.volumeMounts" (dict "root" $root "writable" true) | nindent 10 }}
    volumes:
      {{- include "loopline.volumes" $root | nindent 6 }}
{{- end -}}
