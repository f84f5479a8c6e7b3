"""Routers behind ``base.Router``: App Mesh GatewayRoute and VirtualRouter, Gateway API HTTPRoute,
and an in-memory fake. They move the weights of two named backends and nothing else."""
