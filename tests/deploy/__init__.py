"""Tests of the install manifests in ``deploy/``: the generated CRD, RBAC and the kustomize base."""
