"""The daemon: wire protocol, configuration, batching, serving loop, publishing, metrics, systemd notify."""
