"""Tools for trying and testing ccsync, never used by the engine: the demo, embedded servers, the cable, the HUB simulator."""
