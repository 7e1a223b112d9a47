{{/*
Names, labels and the pieces every Loopline pod shares. Pods run under the Pod Security Standard
"restricted"; the security contexts below are fixed, only the numeric identities are values.
*/}}

{{- define "loopline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loopline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the full name; CronJob names must leave room for the Job suffix (52). */}}
{{- define "loopline.cronJobName" -}}
{{- printf "%s-%s" (include "loopline.fullname" .root) .suffix | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "loopline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades. Call with (dict "root" $ "component" "redis"). */}}
{{- define "loopline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loopline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "loopline.labels" -}}
{{ include "loopline.selectorLabels" . }}
helm.sh/chart: {{ include "loopline.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: loopline
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata for a namespaced object: name, namespace, labels, common annotations. */}}
{{- define "loopline.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "loopline.labels" . | nindent 2 }}
{{- with .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "loopline.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s/%s@%s" .Values.image.registry .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "loopline.redisImage" -}}
{{- $image := .Values.redis.image -}}
{{- if $image.digest -}}
{{- printf "%s/%s@%s" $image.registry $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s/%s:%s" $image.registry $image.repository $image.tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets, or nothing. Use: {{- with (include "loopline.imagePullSecrets" $) }}{{ . | nindent N }}{{ end }} */}}
{{- define "loopline.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Pod-level security context: restricted. */}}
{{- define "loopline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: restricted, read-only root filesystem. */}}
{{- define "loopline.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "loopline.redisHost" -}}
{{- printf "%s-redis" (include "loopline.fullname" .) -}}
{{- end -}}

{{- define "loopline.dataClaim" -}}
{{- default (printf "%s-data" (include "loopline.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{- define "loopline.feastConfigMap" -}}
{{- printf "%s-feast" (include "loopline.fullname" .) -}}
{{- end -}}

{{/* Where KServe loads a model from. Call with (dict "root" $ "model" $model). */}}
{{- define "loopline.storageUri" -}}
{{- $v := .root.Values -}}
{{- if .model.storageUri -}}
{{- .model.storageUri -}}
{{- else if eq $v.modelStorage.type "s3" -}}
{{- /* The trailing / keeps the storage initializer out of prefixes that extend this one (flight-delay-challenger). */ -}}
{{- printf "s3://%s/%s/%s/" $v.modelStorage.s3.bucket (trimSuffix "/" $v.modelStorage.s3.prefix) .model.name -}}
{{- else -}}
{{- printf "pvc://%s/%s/%s" (include "loopline.dataClaim" .root) (trimSuffix "/" $v.modelStorage.pvc.path) .model.name -}}
{{- end -}}
{{- end -}}

{{/* LOOPLINE_REDIS_URL (and the password it needs), from the bundled or the external Redis. */}}
{{- define "loopline.redisEnv" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.passwordKey }}
- name: LOOPLINE_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:%d/%d" (include "loopline.redisHost" .) (int .Values.redis.port) (int .Values.redis.database) | quote }}
{{- else }}
- name: LOOPLINE_REDIS_URL
  value: {{ printf "redis://%s:%d/%d" (include "loopline.redisHost" .) (int .Values.redis.port) (int .Values.redis.database) | quote }}
{{- end }}
{{- else if .Values.externalRedis.existingSecret }}
- name: LOOPLINE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.urlKey }}
{{- else }}
- name: LOOPLINE_REDIS_URL
  value: {{ required "externalRedis.url or externalRedis.existingSecret is required when redis.enabled is false" .Values.externalRedis.url | quote }}
{{- end }}
{{- end -}}

{{/*
Credentials and endpoint for s3:// model storage, in the jobs' environment: boto3's standard
variables, which `loopline models export ... s3://...` reads (as KServe's storage initializer
does in the predictor, from the same Secret and its serving.kserve.io/s3-* annotations).
*/}}
{{- define "loopline.s3Env" -}}
{{- $s3 := .Values.modelStorage.s3 -}}
{{- if eq .Values.modelStorage.type "s3" }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret }}
      key: AWS_SECRET_ACCESS_KEY
- name: AWS_DEFAULT_REGION
  value: {{ $s3.region | quote }}
{{- with $s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ printf "%s://%s" (ternary "https" "http" $s3.useHttps) . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The port object storage listens on: the endpoint's, else 443 (HTTPS) or 80. */}}
{{- define "loopline.objectStoragePort" -}}
{{- $s3 := .Values.modelStorage.s3 -}}
{{- $parts := splitList ":" $s3.endpoint -}}
{{- if gt (len $parts) 1 -}}
{{- last $parts -}}
{{- else -}}
{{- ternary 443 80 $s3.useHttps -}}
{{- end -}}
{{- end -}}

{{/*
Settings every Loopline process reads. The feature repo is assembled by the feature-repo init
container in an emptyDir: definitions from the image, feature_store.yaml from the ConfigMap, and
data/ (Feast registry and offline sources) linked to the PVC.
*/}}
{{- define "loopline.commonEnv" -}}
- name: LOOPLINE_FEATURE_REPO
  value: /var/run/loopline/feature_repo
- name: HOME
  value: /tmp
- name: BENTOML_HOME
  value: /tmp/bentoml
- name: BENTOML_DO_NOT_TRACK
  value: "true"
{{ include "loopline.redisEnv" . | trim }}
{{- end -}}

{{/* The init container that assembles the feature repo. Call with (dict "root" $ "writable" bool). */}}
{{- define "loopline.featureRepoInitContainer" -}}
- name: feature-repo
  image: {{ include "loopline.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    - /bin/sh
    - -ec
    - |
      repo=/var/run/loopline/feature_repo
      data={{ .root.Values.persistence.mountPath }}/feature_repo/data
      {{- if .writable }}
      mkdir -p "$data"
      {{- end }}
      mkdir -p "$repo"
      cp -R /app/feature_repo/. "$repo/"
      cp /etc/loopline/feast/feature_store.yaml "$repo/feature_store.yaml"
      rm -rf "$repo/data"
      ln -s "$data" "$repo/data"
  securityContext:
    {{- include "loopline.containerSecurityContext" .root | nindent 4 }}
  resources:
    requests:
      cpu: 50m
      memory: 64Mi
    limits:
      cpu: 200m
      memory: 128Mi
  volumeMounts:
    - name: data
      mountPath: {{ .root.Values.persistence.mountPath }}
      readOnly: {{ not .writable }}
    - name: feature-repo
      mountPath: /var/run/loopline
    - name: feast-config
      mountPath: /etc/loopline/feast
      readOnly: true
{{- end -}}

{{/* Volumes of a Loopline pod: data PVC, the feature repo, Feast's config and a writable /tmp. */}}
{{- define "loopline.volumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "loopline.dataClaim" . }}
- name: feature-repo
  emptyDir:
    sizeLimit: 64Mi
- name: feast-config
  configMap:
    name: {{ include "loopline.feastConfigMap" . }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}

{{/* Mounts matching loopline.volumes. Call with (dict "root" $ "writable" bool). */}}
{{- define "loopline.volumeMounts" -}}
- name: data
  mountPath: {{ .root.Values.persistence.mountPath }}
  readOnly: {{ not .writable }}
- name: feature-repo
  mountPath: /var/run/loopline
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "loopline.serviceAccountName" -}}
{{- printf "%s-%s" (include "loopline.fullname" .root) .role | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Names of the models' retrain CronJobs. */}}
{{- define "loopline.retrainCronJobs" -}}
{{- $root := . -}}
{{- range .Values.models }}
- {{ include "loopline.cronJobName" (dict "root" $root "suffix" (printf "retrain-%s" .name)) }}
{{- end }}
{{- end -}}

{{/* Names of the models' InferenceServices. */}}
{{- define "loopline.inferenceServices" -}}
{{- range .Values.models }}
- {{ .name }}
{{- end }}
{{- end -}}

{{/* Mode checks shared by the templates. */}}
{{- define "loopline.validate" -}}
{{- $mode := .Values.kserve.deploymentMode -}}
{{- if and (eq .Values.predictor.probes.readiness "grpc") (ne $mode "Standard") -}}
{{- fail "predictor.probes.readiness=grpc needs kserve.deploymentMode=Standard (Knative allows one port: HTTP)" -}}
{{- end -}}
{{- if and (eq .Values.predictor.autoscaling.class "kpa") (ne $mode "Knative") -}}
{{- fail "predictor.autoscaling.class=kpa needs kserve.deploymentMode=Knative (KPA is Knative's autoscaler)" -}}
{{- end -}}
{{- range .Values.models -}}
{{- if and (not (kindIs "invalid" .canaryTrafficPercent)) (ne $mode "Knative") -}}
{{- fail (printf "models[%s].canaryTrafficPercent needs kserve.deploymentMode=Knative (canaries are Knative revisions)" .name) -}}
{{- end -}}
{{- end -}}
{{- $stop := .Values.predictor.shutdown -}}
{{- $needed := add $stop.drainSeconds $stop.graceSeconds (ternary $stop.preStopSeconds 0 (eq $mode "Standard")) -}}
{{- if lt (int .Values.predictor.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "predictor.terminationGracePeriodSeconds must be at least %d: the preStop sleep (Standard mode), drainSeconds and graceSeconds" (int $needed)) -}}
{{- end -}}
{{- if and (eq .Values.modelStorage.type "s3") (or (not .Values.modelStorage.s3.bucket) (not .Values.modelStorage.s3.existingSecret)) -}}
{{- fail "modelStorage.type=s3 needs modelStorage.s3.bucket and modelStorage.s3.existingSecret" -}}
{{- end -}}
{{- end -}}
