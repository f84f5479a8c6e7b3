"""The imperative shell: reconciling, scheduling, leadership, retrying (the only place), serving,
syncing policy files, watching, simulating. It wires adapters to the pure core and owns time."""
