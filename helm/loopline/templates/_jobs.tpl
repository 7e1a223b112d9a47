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
PVC kept from an earlier release, is not trained again, with `loopline train`; without it (the
retrain CronJob) `loopline retrain` trains a challenger against the champion, and the script ends
with the export, whose command replaces the shell. Call with (dict "root" $ "model" $model
"first" bool).
*/}}
{{- define "loopline.trainScript" -}}
{{- $name := squote .model.name -}}
{{- $verb := ternary "train" "retrain" .first -}}
{{- $train := printf "loopline %s --model %s" $verb (squote .model.spec) -}}
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
API credentials for the monitor and rollout pods: a projected, short-lived token mounted where
in-cluster clients look (loopline.cluster reads only this), instead of the automatically mounted
one (automount stays off everywhere).
*/}}
{{- define "loopline.apiTokenVolume" -}}
- name: api-token
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ .Values.serviceAccounts.tokenExpirationSeconds }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end -}}

{{/*
A Job's spec: one pod as the "jobs" service account (no API token) or, with "account", that
role's (with "api", its projected token too), the feature repo assembled by the init container,
the data PVC writable. Call with (dict "root" $ "component" name "model" name-or-empty
"activeDeadlineSeconds" n "resources" map "script" text), optionally "account" role, "api"
bool and "env" (a list of EnvVars).
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
    serviceAccountName: {{ include "loopline.serviceAccountName" (dict "root" $root "role" (default "jobs" .account)) }}
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
          {{- if $v.pushgateway.enabled }}
          - name: LOOPLINE_PUSHGATEWAY_URL
            value: {{ printf "http://%s-pushgateway.%s.svc:%d" (include "loopline.fullname" $root) $root.Release.Namespace (int $v.pushgateway.port) }}
          {{- end }}
          {{- with .env }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        resources:
          {{- toYaml .resources | nindent 10 }}
        securityContext:
          {{- include "loopline.containerSecurityContext" $root | nindent 10 }}
        volumeMounts:
          {{- include "loopline.volumeMounts" (dict "root" $root "writable" true) | nindent 10 }}
          {{- if .api }}
          - name: api-token
            mountPath: /var/run/secrets/kubernetes.io/serviceaccount
            readOnly: true
          {{- end }}
    volumes:
      {{- include "loopline.volumes" $root | nindent 6 }}
      {{- if .api }}
      {{- include "loopline.apiTokenVolume" $root | nindent 6 }}
      {{- end }}
{{- end -}}
