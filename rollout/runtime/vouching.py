"""Who vouches for a RolloutCommand's author: the admission policy, then the authorizer.

Owns two checks the reconciler asks for before it obeys a command. ``verified()``: whether the
ValidatingAdmissionPolicy that binds ``spec.by`` to the requester (and its binding) is installed;
``check()`` looks it up (every minute, from the daemon) and logs an error once when it goes missing;
a failed lookup keeps the last answer. When the settings do not require the policy, commands are
always taken as verified. ``allowed()``: whether the named user holds the command's verb on that
Rollout (a SubjectAccessReview on ``rollouts.delivery.rollout.dev``). It decides nothing about
rollouts and retries nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from rollout.errors import KubeError
from rollout.kube.rollouts import ROLLOUTS

log = logging.getLogger("rollout.commands")


class Reviews(Protocol):
    def allowed(
        self, user: str, groups: Sequence[str], *, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> tuple[bool, str]: ...


class Vouching:
    """See the module docstring. ``installed`` answers whether the admission policy is in place
    (raising ``KubeError`` when it cannot tell); ``policy`` names it in the log."""

    def __init__(
        self, reviews: Reviews, installed: Callable[[], bool], *, required: bool = True, policy: str = ""
    ) -> None:
        self.reviews, self.installed, self.required, self.policy = reviews, installed, required, policy
        self._verified = not required
        self._checked = False

    def verified(self) -> bool:
        return self._verified

    def check(self) -> None:
        """Is the admission policy that vouches for ``spec.by`` installed (and bound)?"""
        if not self.required:
            return
        try:
            installed = self.installed()
        except KubeError as e:
            log.warning("cannot check the admission policy", extra={"event": "rollout.api-error", "error": str(e)})
            return
        if not installed and (self._verified or not self._checked):
            log.error(
                "the admission policy for RolloutCommands is not installed: commands are refused",
                extra={"event": "rollout.no-admission-policy", "policy": self.policy},
            )
        self._verified, self._checked = installed, True

    def allowed(self, user: str, groups: Sequence[str], verb: str, namespace: str, name: str) -> tuple[bool, str]:
        return self.reviews.allowed(
            user, groups, verb=verb, group=ROLLOUTS.group, resource=ROLLOUTS.plural, namespace=namespace, name=name
        )
