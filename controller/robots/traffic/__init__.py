"""Traffic control: robot orders released node by node, so no two robots meet on a node."""
