"""What the runner and the pytest plugin agree on, with no imports: the plugin runs in the tier's interpreter."""

# The environment variable holding the file descriptor the plugin writes its JSON lines to.
FD_VARIABLE = "STAGEBOT_EVENTS_FD"
