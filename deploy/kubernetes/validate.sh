#!/usr/bin/env bash
# Validates the Kubernetes manifests without a cluster:
#  1. renders the kustomize base (kubectl kustomize, or a standalone kustomize);
#  2. checks every object against the Kubernetes OpenAPI schemas, strictly (unknown fields fail),
#     with kubernetes-validate from PyPI (bundled schemas, works offline);
#  3. runs validate.py: the key-transport rules (sidecars, probes, securityContext, limits,
#     Prometheus annotations, the key Service, the NetworkPolicy), plus a self-test that breaks the
#     manifests on purpose and requires each break to be caught.
# Secrets are generated files (make-secrets.sh); when absent, placeholders stand in for the render.
#
# usage: deploy/kubernetes/validate.sh     env: K8S_VERSION (schema version, default 1.32.0)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s_version=${K8S_VERSION:-1.32.0}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cp -r "$here/base" "$tmp/base"
for f in ca.pem pcscf-1.pem pcscf-1.key scscf-1.pem scscf-1.key sealing-pcscf-1-scscf-1.hex; do
  [ -e "$tmp/base/secrets/$f" ] || echo "placeholder for validation" >"$tmp/base/secrets/$f"
done

py=python3
if ! $py -c 'import yaml' 2>/dev/null; then
  pip install -q pyyaml >/dev/null
fi
echo "== render (kustomize)"
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kubectl kustomize "$tmp/base" >"$tmp/rendered.yaml"
elif command -v kustomize >/dev/null 2>&1; then
  kustomize build "$tmp/base" >"$tmp/rendered.yaml"
else
  echo "(no kubectl or kustomize here: rendering with validate.py --render, the subset this base uses)"
  python3 "$here/validate.py" --render "$tmp/base" >"$tmp/rendered.yaml"
fi
echo "rendered $(grep -c '^kind:' "$tmp/rendered.yaml") objects"

echo "== schema (kubernetes-validate --strict, Kubernetes $k8s_version)"
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  pip install -q kubernetes-validate >/dev/null 2>&1 || true
fi
if command -v kubernetes-validate >/dev/null 2>&1; then
  kubernetes-validate --strict --quiet -k "$k8s_version" "$tmp/rendered.yaml"
  echo "ok: every object matches the $k8s_version schema"
else
  echo "kubernetes-validate unavailable (pip install kubernetes-validate): schema step skipped" >&2
  exit 1
fi

echo "== key-transport rules (validate.py)"
$py "$here/validate.py" --self-test "$tmp/base" "$tmp/rendered.yaml"
