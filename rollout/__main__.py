"""``python -m rollout``: the same CLI as the ``rollout`` console script."""

from rollout.cli import main

raise SystemExit(main())
