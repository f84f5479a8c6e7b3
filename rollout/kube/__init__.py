"""A thin layer over the official ``kubernetes`` client: custom objects, Rollout objects and their
status, Events, Leases, and the generated Rollout CRD. One attempt per call; errors translated."""
