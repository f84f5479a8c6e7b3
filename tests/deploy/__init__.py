"""Tests of the installs in ``deploy/`` and the image: the generated CRD and its names, RBAC, the
kustomize base and components, the Helm chart, both applied to real API servers, kube-score, the
alerts (promtool) and the Grafana dashboard (against a real Prometheus), the Dockerfile and its
trimmed venv, and README's install/GitOps/metrics sections."""
