"""Pretrained presets, downloads and weight converters (`nasnet_app.zoo`)."""
