"""What every part of the controller shares about the running line: the order history and its
journal, what is in flight (robot jobs, trips, totes on the conveyor), the live inventory, the
value-added stations, the line's topology for routing, and the device event queues."""
