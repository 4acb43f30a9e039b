"""The shared kernel: the line model (the line file's schema), the clock, the metrics registry
and logging. Every other package may import it; it imports none of them."""
