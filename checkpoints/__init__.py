"""Checkpoints that nasnet-app ships, with `manifest.json`."""
