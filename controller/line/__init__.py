"""The running line as a whole: the service and its task group, the orchestrator, what is in
flight, the live inventory, deadlines and the operator's hold."""
