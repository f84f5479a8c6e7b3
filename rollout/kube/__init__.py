"""A thin layer over the official ``kubernetes`` client: custom objects, informer caches kept by
list + watch, Rollout objects and their status, Events, Leases, and the generated Rollout CRD.
One attempt per call; errors translated."""
