"""What every simulated OPC UA device shares: serving it, its journal of commands, its retained
state and writing its model's values to the address space."""
