"""rollout: a progressive-delivery daemon for Kubernetes.

Owns nothing but the package version; every capability lives in a subpackage (see README).
"""

__version__ = "0.1.0"
